/* Adapter of an exported blimp controller (stateful, reset once): input one int32 Q16.16 error; output the Q16.16
 * command, the saturation flag and the SOPs of the tick. Build with -DPOLICY_PREFIX=<prefix>
 * -DPOLICY_HEADER='"<prefix>.h"'. */
#include POLICY_HEADER
#include "harness.h"

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(POLICY_PREFIX, name)

const uint32_t adapter_in_words = 1u;
const uint32_t adapter_out_words = 3u;

void adapter_reset(void) {
    FN(_reset)();
}

void adapter_step(const int32_t *input, int32_t *output) {
    output[0] = FN(_step)(input[0]);
    output[1] = (int32_t)FN(_last_stats)()->saturated;
    output[2] = (int32_t)FN(_last_stats)()->sops;
}
