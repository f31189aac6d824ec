/* Firmware harness: streams records from in.bin through the policy adapter into out.bin over semihosting.
 *
 * out.bin starts with a calibration record of 2 words: SysTick ticks of an empty measurement and of a loop of
 * CALIBRATION_LOOPS x 2 instructions. Then, per input record, the adapter's output words followed by the SysTick
 * ticks its step took. SysTick runs from the core clock; under QEMU -icount the virtual clock advances by a
 * fixed number of instructions per tick, so ticks are instruction counts (the calibration gives the ratio). */
#include <stdint.h>

#include "harness.h"
#include "semihost.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYSTICK_MASK 0xFFFFFFu
#define CALIBRATION_LOOPS 100000u

static int32_t input[HARNESS_MAX_WORDS];
static int32_t output[HARNESS_MAX_WORDS + 1];

static uint32_t elapsed(uint32_t start, uint32_t stop) {
    return (start - stop) & SYSTICK_MASK; /* SysTick counts down */
}

static uint32_t calibration_loop(void) {
    uint32_t start, stop, n = CALIBRATION_LOOPS;
    start = SYST_CVR;
    __asm__ volatile("1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
    stop = SYST_CVR;
    return elapsed(start, stop);
}

int main(void) {
    static const char in_name[] = "in.bin", out_name[] = "out.bin";
    int32_t in_file, out_file;
    uint32_t start, stop, in_bytes = adapter_in_words * 4u, out_bytes = (adapter_out_words + 1u) * 4u;
    if (adapter_in_words > HARNESS_MAX_WORDS || adapter_out_words > HARNESS_MAX_WORDS) return 1;
    SYST_RVR = SYSTICK_MASK;
    SYST_CVR = 0u;
    SYST_CSR = 5u; /* enable, core clock, no interrupt */
    in_file = sh_open(in_name, sizeof in_name - 1u, SH_MODE_READ_BINARY);
    out_file = sh_open(out_name, sizeof out_name - 1u, SH_MODE_WRITE_BINARY);
    if (in_file < 0 || out_file < 0) return 2;
    start = SYST_CVR;
    stop = SYST_CVR;
    output[0] = (int32_t)elapsed(start, stop);
    output[1] = (int32_t)calibration_loop();
    if (sh_write(out_file, output, 8u) != 0) return 3;
    adapter_reset();
    while (sh_read(in_file, input, in_bytes) == 0) {
        start = SYST_CVR;
        adapter_step(input, output);
        stop = SYST_CVR;
        output[adapter_out_words] = (int32_t)elapsed(start, stop);
        if (sh_write(out_file, output, out_bytes) != 0) return 4;
    }
    sh_close(in_file);
    sh_close(out_file);
    return 0;
}
