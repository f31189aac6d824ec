typedef struct {
    uint32_t n;
    const weight_t *enc_w;       /* [n] signed input weight per Q16.16 error */
    const int32_t *enc_b;        /* [n] bias (state units) */
    const uint16_t *enc_decay;   /* [n] Q12 membrane retention */
    const int32_t *enc_th;       /* [n] threshold */
    const weight_t *hid_w;       /* [n][2] 2x2 block rows: neuron i from encoding neurons 2(i/2), 2(i/2)+1 */
    const uint16_t *syn_decay;   /* [n] Q12 */
    const uint16_t *mem_decay;   /* [n] Q12 */
    const int32_t *hid_th;       /* [n] base threshold */
    const weight_t *rec_w_t;     /* [n][n] recurrent, [pre][post]; 0 if not recurrent */
    const uint16_t *th_decay;    /* [n] Q12 IWTA trace retention; 0 without IWTA */
    const weight_t *th_w;        /* [n][n] IWTA threshold weights, [post][pre]; 0 without IWTA */
    const weight_t *dec_w;       /* [n] readout gains */
    int32_t dec_decay;           /* Q12 readout retention */
    int32_t out_mult;            /* readout state -> Q16.16 command */
    uint32_t enc_fan;            /* SOPs per encoding spike */
    uint32_t hid_fan;            /* SOPs per hidden spike */
} net_t;

typedef struct {
    int32_t enc_v[MAX_HIDDEN];
    int32_t enc_reset[MAX_HIDDEN];
    int32_t hid_c[MAX_HIDDEN];
    int32_t hid_v[MAX_HIDDEN];
    int32_t hid_reset[MAX_HIDDEN];
    int32_t trace[MAX_HIDDEN];
    uint8_t hid_s[MAX_HIDDEN];
    int32_t readout;
} net_state_t;
