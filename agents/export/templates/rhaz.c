/* sign(x) * ((|x| + 2^(s-1)) >> s), 1 <= s <= 62, |x| < 2^62 */
static int64_t rhaz(int64_t x, unsigned s) {
    int64_t half = (int64_t)1 << (s - 1u);
    return x < 0 ? -((-x + half) >> s) : ((x + half) >> s);
}
