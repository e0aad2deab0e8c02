/* libFuzzer target: frame decoder + message decoder + validation. */
#include <stddef.h>
#include <stdint.h>

#include "decode_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct decode_counts n = { 0 };

	decode_input(data, size, &n);
	return 0;
}
