/*
 * The path every received byte takes: frame decoder, message decoder,
 * validation.  Shared by the libFuzzer target and the random-input test.
 */
#include "decode_input.h"

#include "codec.h"
#include "frame.h"
#include "pciefw.h"

void decode_input(const uint8_t *data, size_t len, struct decode_counts *n)
{
	struct pf_frame_decoder dec;
	struct pf_codec codec;

	pf_frame_decoder_init(&dec, PCIEFW_MAX_FRAME(PCIEFW_DEFAULT_PAYLOAD));
	pf_codec_init(&codec);
	while (len) {
		const uint8_t *body;
		size_t used, blen;
		PfMessage *m;
		char err[256];
		int r = pf_frame_decoder_push(&dec, data, len, &used, &body, &blen);

		data += used;
		len -= used;
		if (r == PF_AGAIN)
			break;
		if (r < 0) {
			/* A real peer would hang up; start a fresh stream instead. */
			n->framing_errors++;
			pf_frame_decoder_free(&dec);
			pf_frame_decoder_init(&dec, PCIEFW_MAX_FRAME(PCIEFW_DEFAULT_PAYLOAD));
			if (!used && len) {
				data++;
				len--;
			}
			continue;
		}
		r = pf_codec_decode(&codec, body, blen, &m, err, sizeof(err));
		if (r) {
			n->decode_errors++;
			continue;
		}
		if (pf_msg_validate(m, PCIEFW_DEFAULT_PAYLOAD, err, sizeof(err)))
			n->invalid++;
		else
			n->valid++;
	}
	if (pf_frame_decoder_finish(&dec) == PF_ERR_TRUNCATED)
		n->truncated++;
	pf_frame_decoder_free(&dec);
	pf_codec_free(&codec);
}
