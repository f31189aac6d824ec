/* Cortex-M4 start-up for the firmware harness: vector table, .data copy, .bss zeroing, FPU enable (hard-float
 * builds), then main(). Every fault ends the QEMU run with a failure exit instead of hanging. */
#include <stdint.h>

#include "semihost.h"

extern uint32_t _stack_top, _data_load, _data_start, _data_end, _bss_start, _bss_end;
int main(void);
void reset_handler(void);
static void fault_handler(void);

#define CPACR (*(volatile uint32_t *)0xE000ED88u)

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)&_stack_top,    (uintptr_t)reset_handler, (uintptr_t)fault_handler, (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,  (uintptr_t)fault_handler, (uintptr_t)fault_handler, 0u,
    0u,                        0u,                       0u,                       (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,  0u,                       (uintptr_t)fault_handler, (uintptr_t)fault_handler,
};

void reset_handler(void) {
    uint32_t *src = &_data_load, *dst;
    for (dst = &_data_start; dst < &_data_end; ++dst) *dst = *src++;
    for (dst = &_bss_start; dst < &_bss_end; ++dst) *dst = 0u;
#if defined(__ARM_FP)
    CPACR |= 0xFu << 20; /* full access to CP10/CP11 (the FPU) */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    sh_exit(main() == 0);
}

static void fault_handler(void) {
    sh_exit(0);
}
