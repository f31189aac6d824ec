#if SPIKERL_SIMD
/* Packed sums in the first half of ws.acc: pairs[2k] holds the int16 sums of outputs (4k, 4k+2), pairs[2k+1] those
 * of (4k+1, 4k+3); unpacked in place into int32 ws.acc[0..n_out), from the last group down. */
static void accumulate_packed(const uint8_t *in, uint32_t n_in, const int8_t *w_t, uint32_t n_out) {
    uint32_t *pairs = (uint32_t *)ws.acc;
    uint32_t j, k, words = n_out / 4u;
    for (k = 0; k < 2u * words; ++k) pairs[k] = 0u;
    for (j = 0; j < n_in; ++j) {
        if (in[j]) {
            const int8_t *row = w_t + j * n_out;
            for (k = 0; k < words; ++k) {
                uint32_t w;
                __builtin_memcpy(&w, row + 4u * k, 4u);
                pairs[2u * k] = (uint32_t)__sadd16((int16x2_t)pairs[2u * k], __sxtb16((int8x4_t)w));
                pairs[2u * k + 1u] =
                    (uint32_t)__sadd16((int16x2_t)pairs[2u * k + 1u], __sxtb16((int8x4_t)((w >> 8) | (w << 24))));
            }
        }
    }
    for (k = words; k-- > 0u;) {
        uint32_t even = pairs[2u * k], odd = pairs[2u * k + 1u];
        ws.acc[4u * k] = (int16_t)(uint16_t)even;
        ws.acc[4u * k + 1u] = (int16_t)(uint16_t)odd;
        ws.acc[4u * k + 2u] = (int16_t)(uint16_t)(even >> 16);
        ws.acc[4u * k + 3u] = (int16_t)(uint16_t)(odd >> 16);
    }
}
#endif

/* Synaptic input of one CUBA-LIF layer step into ws.acc: event-driven sum of the transposed weight rows of the
 * spiking inputs, plus the intra-layer blocks driven by the layer's own spikes s_{t-1} (in ws.s of the layer). */
static void lif_layer(const uint8_t *in, uint32_t n_in, const int8_t *w_t, uint32_t packed, const int8_t *blocks_t,
                      uint32_t groups, uint32_t pop, int t, const uint8_t *s, uint32_t n_out) {
    int32_t *acc = ws.acc;
    uint32_t j, f;
#if SPIKERL_SIMD
    if (packed) {
        accumulate_packed(in, n_in, w_t, n_out);
    } else
#endif
    {
        (void)packed;
        for (f = 0; f < n_out; ++f) acc[f] = 0;
        for (j = 0; j < n_in; ++j) {
            if (in[j]) {
                const int8_t *row = w_t + j * n_out;
                for (f = 0; f < n_out; ++f) acc[f] += row[f];
            }
        }
    }
    if (blocks_t && t > 0) {
        uint32_t g, i;
        for (g = 0; g < groups; ++g) {
            for (j = 0; j < pop; ++j) {
                if (s[g * pop + j]) {
                    const int8_t *row = blocks_t + (g * pop + j) * pop;
                    for (i = 0; i < pop; ++i) acc[g * pop + i] += row[i];
                }
            }
        }
    }
}
