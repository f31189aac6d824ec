/* Adapter of the float32 MLP actor used as the cost baseline: input OBS_DIM float32 words (raw observation), output
 * ACT_DIM float32 words (tanh actions). Build with -DPOLICY_HEADER='"spikerl_mlp.h"'. */
#include <string.h>

#include POLICY_HEADER
#include "harness.h"

const uint32_t adapter_in_words = SPIKERL_MLP_OBS_DIM;
const uint32_t adapter_out_words = SPIKERL_MLP_ACT_DIM;

void adapter_reset(void) {
}

void adapter_step(const int32_t *input, int32_t *output) {
    float obs[SPIKERL_MLP_OBS_DIM], action[SPIKERL_MLP_ACT_DIM];
    memcpy(obs, input, sizeof obs);
    spikerl_mlp_step(obs, action);
    memcpy(output, action, sizeof action);
}
