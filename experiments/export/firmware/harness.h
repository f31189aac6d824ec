/* The adapter a policy provides to the firmware harness: one record of int32 input words -> one record of
 * int32 output words per call. */
#ifndef SPIKERL_HARNESS_H
#define SPIKERL_HARNESS_H

#include <stdint.h>

#define HARNESS_MAX_WORDS 64

extern const uint32_t adapter_in_words;  /* int32 words read per step */
extern const uint32_t adapter_out_words; /* int32 words written per step */

void adapter_reset(void);                               /* once, before the first step */
void adapter_step(const int32_t *input, int32_t *output); /* one control step */

#endif /* SPIKERL_HARNESS_H */
