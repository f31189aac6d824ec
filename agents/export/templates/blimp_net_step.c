/* One control tick of one network: returns its Q16.16 command, stores its spikes, adds its SOPs. */
static int64_t net_step(const net_t *p, net_state_t *st, int32_t e, uint32_t *spikes) {
    uint8_t s_enc[MAX_HIDDEN];
    int32_t drive[MAX_HIDDEN];
    int32_t threshold[MAX_HIDDEN];
    int32_t ro_drive = 0;
    uint32_t i, j, n_enc = 0, n_hid = 0;
    const uint32_t n = p->n;
    for (i = 0; i < n; ++i) {
        int32_t current = (int32_t)rhaz((int64_t)p->enc_w[i] * (int64_t)e, ERROR_SHIFT) + p->enc_b[i];
        st->enc_v[i] = rtz_mul(st->enc_v[i], p->enc_decay[i]) + current - st->enc_reset[i];
        s_enc[i] = (uint8_t)(st->enc_v[i] > p->enc_th[i]);
        st->enc_reset[i] = s_enc[i] ? p->enc_th[i] : 0;
        n_enc += s_enc[i];
    }
    for (i = 0; i < n; ++i) {
        uint32_t first = i & ~1u;
        drive[i] = (s_enc[first] ? p->hid_w[2u * i] : 0) + (s_enc[first + 1u] ? p->hid_w[2u * i + 1u] : 0);
        threshold[i] = p->hid_th[i];
    }
    if (p->rec_w_t) {
        for (j = 0; j < n; ++j) {
            if (st->hid_s[j]) {
                const weight_t *row = p->rec_w_t + j * n;
                for (i = 0; i < n; ++i) drive[i] += row[i];
            }
        }
    }
    if (p->th_w) {
        for (j = 0; j < n; ++j)
            st->trace[j] = rtz_mul(st->trace[j], p->th_decay[j]) + (s_enc[j] ? (int32_t)1 << TRACE_BITS : 0);
        for (i = 0; i < n; ++i) {
            const weight_t *row = p->th_w + i * n;
            int64_t acc = 0;
            for (j = 0; j < n; ++j) acc += (int64_t)row[j] * (int64_t)st->trace[j];
            threshold[i] += (int32_t)rhaz(acc, TRACE_SHIFT);
        }
    }
    for (i = 0; i < n; ++i) {
        st->hid_c[i] = rtz_mul(st->hid_c[i], p->syn_decay[i]) + drive[i] * HEADROOM;
        st->hid_v[i] = rtz_mul(st->hid_v[i], p->mem_decay[i]) + st->hid_c[i] - st->hid_reset[i];
        st->hid_s[i] = (uint8_t)(st->hid_v[i] > threshold[i]);
        st->hid_reset[i] = st->hid_s[i] ? threshold[i] : 0;
        if (st->hid_s[i]) ro_drive += p->dec_w[i];
        n_hid += st->hid_s[i];
    }
    st->readout = rtz_mul(st->readout, p->dec_decay) + ro_drive * HEADROOM;
    spikes[0] = n_enc;
    spikes[1] = n_hid;
    ws.stats.sops += n_enc * p->enc_fan + n_hid * p->hid_fan;
    return rhaz((int64_t)st->readout * (int64_t)p->out_mult, OUT_SHIFT);
}
