/* ARM semihosting: operation number in r0, pointer to the argument block in r1, result in r0. */
#include "semihost.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR 0x20023

static int32_t semihost(uint32_t operation, const void *argument) {
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

int32_t sh_open(const char *path, uint32_t length, uint32_t mode) {
    const uint32_t block[3] = {(uint32_t)path, mode, length};
    return semihost(SYS_OPEN, block);
}

int32_t sh_read(int32_t handle, void *buffer, uint32_t bytes) {
    const uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, bytes};
    return semihost(SYS_READ, block);
}

int32_t sh_write(int32_t handle, const void *buffer, uint32_t bytes) {
    const uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, bytes};
    return semihost(SYS_WRITE, block);
}

void sh_close(int32_t handle) {
    const uint32_t block[1] = {(uint32_t)handle};
    (void)semihost(SYS_CLOSE, block);
}

void sh_exit(int success) {
    /* 32-bit ARM: the reason code itself is the argument; QEMU exits 0 on ApplicationExit, 1 otherwise */
    (void)semihost(SYS_EXIT, (const void *)(success ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUNTIME_ERROR));
    for (;;) {
    }
}
