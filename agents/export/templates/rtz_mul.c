/* sign(x) * (|x * a| >> DECAY_BITS): decay multiply rounding toward zero, product in 64 bits */
static int32_t rtz_mul(int32_t x, int32_t a) {
    int64_t p = (int64_t)x * (int64_t)a;
    return (int32_t)(p < 0 ? -((-p) >> DECAY_BITS) : (p >> DECAY_BITS));
}
