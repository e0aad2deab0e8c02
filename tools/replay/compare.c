/*
 * Message comparison, field by field, driven by the protobuf-c
 * descriptors of pciefw.proto so that every field of every kind is
 * covered and can be named in --ignore.
 */
#include <stdio.h>
#include <string.h>

#include "replay.h"

struct diff {
	char *p;
	size_t left;
	bool any;
};

static void diff_add(struct diff *d, const char *name)
{
	int n;

	if (!d->left)
		return;
	n = snprintf(d->p, d->left, "%s%s", d->any ? ", " : "", name);
	d->any = true;
	if (n < 0)
		return;
	if ((size_t)n >= d->left)
		n = (int)d->left - 1;
	d->p += n;
	d->left -= (size_t)n;
}

/* The descriptor of a kind's body message; NULL if @kind is not one. */
static const ProtobufCFieldDescriptor *body_field(int kind)
{
	if (kind <= 0)
		return NULL;
	return protobuf_c_message_descriptor_get_field(&pciefw__message__descriptor,
						       (unsigned)kind);
}

static const ProtobufCMessage *body_of(const PfMessage *m)
{
	const ProtobufCFieldDescriptor *f = body_field(m->body_case);

	if (!f)
		return NULL;
	return *(ProtobufCMessage *const *)((const char *)m + f->offset);
}

static bool ignored(const struct rp_ignores *ig, int kind, const char *field)
{
	if (kind == PCIEFW__MESSAGE__BODY_HELLO && !strcmp(field, "peer_name"))
		return true;   /* free text for logs (spec 2.1) */
	for (size_t i = 0; ig && i < ig->n; i++)
		if ((!ig->f[i].kind || ig->f[i].kind == kind) &&
		    !strcmp(ig->f[i].field, field))
			return true;
	return false;
}

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

static bool message_eq(const ProtobufCMessage *a, const ProtobufCMessage *b);

/* One value of type @t stored at @a and @b. */
static bool value_eq(const ProtobufCFieldDescriptor *f, const void *a, const void *b)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *x = *(char *const *)a, *y = *(char *const *)b;

		return !strcmp(x ? x : "", y ? y : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *x = a, *y = b;

		return x->len == y->len && (!x->len || !memcmp(x->data, y->data, x->len));
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return message_eq(*(ProtobufCMessage *const *)a,
				  *(ProtobufCMessage *const *)b);
	default:
		return !memcmp(a, b, elem_size(f->type));
	}
}

static bool field_eq(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *a,
		     const ProtobufCMessage *b)
{
	const char *pa = (const char *)a, *pb = (const char *)b;

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t na = *(const size_t *)(pa + f->quantifier_offset);
		size_t nb = *(const size_t *)(pb + f->quantifier_offset);
		const char *va = *(char *const *)(pa + f->offset);
		const char *vb = *(char *const *)(pb + f->offset);
		size_t sz = elem_size(f->type);

		if (na != nb)
			return false;
		for (size_t i = 0; i < na; i++)
			if (!value_eq(f, va + i * sz, vb + i * sz))
				return false;
		return true;
	}
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
		const protobuf_c_boolean *ha = (const void *)(pa + f->quantifier_offset);
		const protobuf_c_boolean *hb = (const void *)(pb + f->quantifier_offset);

		if (*ha != *hb)
			return false;
		if (!*ha)
			return true;
	}
	return value_eq(f, pa + f->offset, pb + f->offset);
}

static bool message_eq(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	if (!a || !b)
		return a == b;
	if (a->descriptor != b->descriptor)
		return false;
	for (unsigned i = 0; i < a->descriptor->n_fields; i++)
		if (!field_eq(&a->descriptor->fields[i], a, b))
			return false;
	return true;
}

bool rp_msg_equal(const struct rp_ignores *ig, const PfMessage *want,
		  const PfMessage *got, char *diffbuf, size_t difflen)
{
	struct diff d = { diffbuf, difflen, false };
	const ProtobufCMessage *a, *b;

	if (difflen)
		diffbuf[0] = '\0';
	if (want->body_case != got->body_case) {
		diff_add(&d, "kind");
		return false;
	}
	a = body_of(want);
	b = body_of(got);
	if (!a || !b)
		return a == b;
	for (unsigned i = 0; i < a->descriptor->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &a->descriptor->fields[i];

		if (ignored(ig, want->body_case, f->name))
			continue;
		if (!field_eq(f, a, b))
			diff_add(&d, f->name);
	}
	return !d.any;
}

/* Does some kind (or @kind, if non-zero) have a field called @name? */
static bool field_exists(int kind, const char *name)
{
	for (int k = kind ? kind : 1; ; k++) {
		const ProtobufCFieldDescriptor *f = body_field(k);

		if (!f)
			return false;
		if (protobuf_c_message_descriptor_get_field_by_name(f->descriptor, name))
			return true;
		if (kind)
			return false;
	}
}

int rp_ignores_parse(struct rp_ignores *ig, const char *spec, char *err,
		     size_t errlen)
{
	char buf[512], *save = NULL, *tok;

	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "--ignore '%.40s...': too long", spec);
		return -1;
	}
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dot = strchr(tok, '.');
		const char *field = dot ? dot + 1 : tok;
		int kind = 0;

		if (dot) {
			*dot = '\0';
			kind = pf_msg_kind_from_name(tok);
			if (!kind) {
				snprintf(err, errlen, "--ignore: unknown message kind '%s'",
					 tok);
				return -1;
			}
		}
		if (!*field || strlen(field) >= sizeof(ig->f[0].field)) {
			snprintf(err, errlen, "--ignore: empty or overlong field name");
			return -1;
		}
		if (!field_exists(kind, field)) {
			if (kind)
				snprintf(err, errlen, "--ignore: %s has no field '%s'",
					 pf_msg_kind_name(kind), field);
			else
				snprintf(err, errlen,
					 "--ignore: no message kind has a field '%s'", field);
			return -1;
		}
		if (ig->n == RP_MAX_IGNORES) {
			snprintf(err, errlen, "--ignore: at most %d fields", RP_MAX_IGNORES);
			return -1;
		}
		ig->f[ig->n].kind = kind;
		strcpy(ig->f[ig->n].field, field);
		ig->n++;
	}
	if (!ig->n) {
		snprintf(err, errlen, "--ignore: no field given");
		return -1;
	}
	return 0;
}
