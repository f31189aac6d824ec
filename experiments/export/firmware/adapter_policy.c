/* Adapter of an exported spiking actor (POLICY_PREFIX_step): input OBS_DIM int32 Q16.16 words; output ACT_DIM Q15
 * actions, the saturated-dimension count and the SOPs of the step. Build with -DPOLICY_PREFIX=<prefix>
 * -DPOLICY_HEADER='"<prefix>.h"' -DPOLICY_UPPER=<PREFIX>. */
#include POLICY_HEADER
#include "harness.h"

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(POLICY_PREFIX, name)
#define OBS_DIM CAT(POLICY_UPPER, _OBS_DIM)
#define ACT_DIM CAT(POLICY_UPPER, _ACT_DIM)

const uint32_t adapter_in_words = OBS_DIM;
const uint32_t adapter_out_words = ACT_DIM + 2u;

void adapter_reset(void) {
}

void adapter_step(const int32_t *input, int32_t *output) {
    int16_t action[ACT_DIM];
    uint32_t d, saturated = FN(_step)(input, action);
    for (d = 0; d < ACT_DIM; ++d) output[d] = action[d];
    output[ACT_DIM] = (int32_t)saturated;
    output[ACT_DIM + 1] = (int32_t)FN(_last_stats)()->sops;
}
