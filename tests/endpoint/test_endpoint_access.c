/*
 * The model access contract (endpoint/device.h, struct pf_bar_decl): every
 * shipped model, driven by a host with an odd max payload (4097 bytes,
 * negotiated down from the endpoint's default) through every access size a
 * host may send -- 1..16 bytes, 2^k-1, 2^k and 2^k+1 up to the max
 * payload, the max payload itself and one more -- at offsets 0..7 and at
 * the end of each BAR, reads and writes.  A model handed a size it never
 * expected overflows its buffers: under ASan (the asan suite runs this test
 * against the sanitized endpoint) that is a report in the endpoint's log,
 * and the endpoint dies.  Each model must come through alive and clean,
 * every read must complete with the requested length or an error, and the
 * one-more-than-max read must be refused as a protocol error (spec 1.3).
 *
 * The contract's shape itself is checked on the e1000 (4-byte registers):
 * narrower reads are widened, wider ones split, narrower writes refused.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_util.h"
#include "msg.h"
#include "pciefw.h"

#define MAX_PAYLOAD 4097u

/* Every model the endpoint knows, from --list-devices (first column). */
static GPtrArray *list_models(void)
{
	const char *bin = g_getenv("PCIEFW_ENDPOINT");
	char *argv[] = { (char *)bin, "--list-devices", NULL };
	char *out = NULL;
	GPtrArray *models = g_ptr_array_new_with_free_func(g_free);
	char **lines;

	g_assert_nonnull(bin);
	g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
				   &out, NULL, NULL, NULL));
	lines = g_strsplit(out, "\n", -1);
	for (char **l = lines; *l; l++)
		if (**l && **l != ' ')
			g_ptr_array_add(models, g_strndup(*l, strcspn(*l, " ")));
	g_strfreev(lines);
	g_free(out);
	g_assert_cmpuint(models->len, >=, 8);
	return models;
}

/* 1..16, then 2^k-1, 2^k, 2^k+1 up to @max, @max itself: ascending. */
static GArray *access_sizes(uint32_t max)
{
	GArray *sizes = g_array_new(FALSE, FALSE, sizeof(uint32_t));

	for (uint32_t n = 1; n <= 16; n++)
		g_array_append_val(sizes, n);
	for (uint32_t p = 32; p <= max; p *= 2) {
		uint32_t around[] = { p - 1, p, p + 1 };

		for (unsigned i = 0; i < 3; i++)
			if (around[i] <= max)
				g_array_append_val(sizes, around[i]);
	}
	if (g_array_index(sizes, uint32_t, sizes->len - 1) != max)
		g_array_append_val(sizes, max);
	return sizes;
}

/*
 * With @records, on the rings with binary register records (spec 11.7):
 * every access of up to 8 bytes goes as one (an endpoint that did not
 * take them would find an oversized frame in each).
 */
static struct pf_host *connect_host_as(const struct endpoint_proc *ep,
				       uint32_t max_payload, bool records)
{
	struct pf_host_opts o = { .name = "pciefw-access-test",
				  .max_payload = max_payload,
				  .mem_base = GUEST_BASE, .mem_size = GUEST_SIZE,
				  .shm_rings = records, .reg_records = records };
	char err[512];
	struct pf_host *h = pf_host_connect(ep->addr, &o, err, sizeof(err));

	if (!h)
		g_error("connect to %s: %s", ep->addr, err);
	g_assert_true(pf_host_records(h) == records);
	return h;
}

static struct pf_host *connect_payload(const struct endpoint_proc *ep,
				       uint32_t max_payload)
{
	return connect_host_as(ep, max_payload, false);
}

/* Any status is fine; a lost connection is not. */
static void check_status(struct pf_host *h, int r, const char *model,
			 const char *what, unsigned bar, uint64_t off, uint32_t size)
{
	if (r < 0)
		g_error("%s: %s of %u bytes at BAR%u+0x%llx: connection lost (%d: %s)",
			model, what, size, bar, (unsigned long long)off, r,
			pf_host_error(h));
}

/* One access of every size at every offset that matters in one BAR. */
static unsigned drive_bar(struct pf_host *h, const char *model,
			  const Pciefw__Bar *b, GArray *sizes, uint8_t *buf)
{
	bool io = b->kind == PCIEFW__BAR_KIND__BAR_IO;
	unsigned n = 0;

	for (guint i = 0; i < sizes->len; i++) {
		uint32_t size = g_array_index(sizes, uint32_t, i);
		uint64_t offs[10];
		unsigned n_offs = 0;

		if (io && size != 1 && size != 2 && size != 4)
			continue;       /* a protocol error for IO (spec 3.3) */
		for (uint64_t o = 0; o < 8; o++)
			offs[n_offs++] = o;
		if (size <= b->size) {
			offs[n_offs++] = b->size - size;        /* ends at the end */
			offs[n_offs++] = b->size - size + 1;    /* one past: UR */
		}
		for (unsigned k = 0; k < n_offs; k++) {
			uint64_t off = offs[k];
			int r;

			memset(buf, 0xa5, size);
			r = io ? pf_host_io_read(h, b->index, off, buf, size) :
				 pf_host_mem_read(h, b->index, off, buf, size);
			check_status(h, r, model, "read", b->index, off, size);
			/* Zeros: no register write that starts work by accident. */
			memset(buf, 0, size);
			r = io ? pf_host_io_write(h, b->index, off, buf, size) :
				 pf_host_mem_write(h, b->index, off, buf, size);
			check_status(h, r, model, "write", b->index, off, size);
			n += 2;
		}
	}
	return n;
}

static void assert_clean_log(const struct endpoint_proc *ep, const char *model)
{
	char *log = endpoint_log(ep);

	if (strstr(log, "AddressSanitizer") || strstr(log, "runtime error") ||
	    strstr(log, "LeakSanitizer"))
		g_error("%s: the endpoint reported memory errors:\n%s", model, log);
	g_free(log);
}

/*
 * The rtl model runs a simulation hdl/build.py built: ./dev test builds the
 * Verilog example and names it in PCIEFW_RTL_SIM.
 */
static char *device_arg(const char *model)
{
	const char *sim = g_getenv("PCIEFW_RTL_SIM");

	if (strcmp(model, "rtl"))
		return g_strdup(model);
	return sim ? g_strdup_printf("rtl,sim=%s", sim) : NULL;
}

static void test_every_model_every_size(gconstpointer data)
{
	const char *model = data;
	g_autofree char *device = device_arg(model);
	const char *const args[] = { "--device", device, NULL };
	struct endpoint_proc ep;
	struct pf_host *h;
	const Pciefw__DeviceDescription *d;
	GArray *sizes = access_sizes(MAX_PAYLOAD);
	uint8_t *buf = g_malloc(MAX_PAYLOAD + 1);
	unsigned n = 0;
	int r;

	if (!device) {
		g_test_skip("PCIEFW_RTL_SIM names no simulation (hdl/build.py; "
			    "./dev test sets it)");
		g_array_free(sizes, TRUE);
		g_free(buf);
		return;
	}
	endpoint_start(&ep, false, args);
	h = connect_payload(&ep, MAX_PAYLOAD);
	g_assert_cmpuint(pf_host_session(h)->max_payload, ==, MAX_PAYLOAD);
	g_assert_true(pf_host_session(h)->features & PCIEFW_FEATURE_MEM_BURST);
	d = pf_host_description(h);
	for (size_t i = 0; i < d->n_bars; i++)
		n += drive_bar(h, model, d->bars[i], sizes, buf);
	g_test_message("%s: %u accesses to %zu BARs", model, n, d->n_bars);
	/* One more than the max payload: a protocol error, not a model call. */
	for (size_t i = 0; i < d->n_bars; i++) {
		if (d->bars[i]->kind == PCIEFW__BAR_KIND__BAR_IO)
			continue;
		r = pf_host_mem_read(h, d->bars[i]->index, 0, buf, MAX_PAYLOAD + 1);
		g_assert_cmpint(r, <, 0);
		g_assert_nonnull(strstr(pf_host_error(h), "max payload"));
		break;
	}
	pf_host_close(h, false);

	g_assert_true(endpoint_alive(&ep));
	assert_clean_log(&ep, model);
	/* And it serves the next host. */
	h = connect_payload(&ep, MAX_PAYLOAD);
	pf_host_close(h, true);
	g_assert_cmpint(endpoint_stop(&ep), ==, 0);
	g_array_free(sizes, TRUE);
	g_free(buf);
}

/* e1000 registers are 32 bits (BAR declared 4..4). */
#define E1K_RDBAL 0x2800
#define E1K_RDBAH 0x2804

/*
 * The same shape whether the accesses come as messages or as binary
 * register records (spec 11.7): both pass through the one contract.
 */
static void test_contract_shape(gconstpointer as_records)
{
	const char *const args[] = { "--device", "e1000", NULL };
	bool records = as_records != NULL;
	struct endpoint_proc ep;
	struct pf_host *h;
	uint8_t b[16];

	endpoint_start(&ep, false, args);
	h = connect_host_as(&ep, MAX_PAYLOAD, records);
	wr32(h, 0, E1K_RDBAL, 0x12345670);
	wr32(h, 0, E1K_RDBAH, 0xcafef00d);
	/* Narrower reads are widened: the byte asked for, from the register. */
	g_assert_cmpint(pf_host_mem_read(h, 0, E1K_RDBAL + 1, b, 1), ==, 0);
	g_assert_cmphex(b[0], ==, 0x56);
	g_assert_cmpint(pf_host_mem_read(h, 0, E1K_RDBAL + 2, b, 2), ==, 0);
	g_assert_cmphex(pf_le_load(b, 2), ==, 0x1234);
	/* Wider reads are split: two registers, in address order. */
	g_assert_cmpint(pf_host_mem_read(h, 0, E1K_RDBAL, b, 8), ==, 0);
	g_assert_cmphex(pf_le_load(b, 8), ==, 0xcafef00d12345670ull);
	/* A burst is split too (the default rule). */
	g_assert_cmpint(pf_host_mem_read(h, 0, E1K_RDBAL, b, 12), ==, 0);
	g_assert_cmphex(pf_le_load(b, 8), ==, 0xcafef00d12345670ull);
	/* A write narrower than a register is refused: nothing changes. */
	pf_le_store(b, 2, 0xffff);
	g_assert_cmpint(pf_host_mem_write(h, 0, E1K_RDBAL, b, 2), ==, 0);
	g_assert_cmphex(rd32(h, 0, E1K_RDBAL), ==, 0x12345670);
	/* A wider one is split into register writes. */
	wr64(h, 0, E1K_RDBAL, 0x0000000100000020ull);
	g_assert_cmphex(rd32(h, 0, E1K_RDBAL), ==, 0x20);
	g_assert_cmphex(rd32(h, 0, E1K_RDBAH), ==, 1);
	{
		char *log = endpoint_log(&ep);

		g_assert_nonnull(strstr(log, "refusing a 2-byte write to BAR0+0x2800"));
		g_free(log);
	}
	pf_host_close(h, true);
	g_assert_cmpint(endpoint_stop(&ep), ==, 0);
}

int main(int argc, char **argv)
{
	GPtrArray *models;

	g_test_init(&argc, &argv, NULL);
	models = list_models();
	for (guint i = 0; i < models->len; i++) {
		char *path = g_strdup_printf("/access/every-size/%s",
					     (char *)models->pdata[i]);

		g_test_add_data_func(path, models->pdata[i],
				     test_every_model_every_size);
		g_free(path);
	}
	g_test_add_data_func("/access/contract-shape", NULL, test_contract_shape);
	g_test_add_data_func("/access/contract-shape/records", "records",
			     test_contract_shape);
	return g_test_run();
}
