/* ARM semihosting calls (BKPT 0xAB) used by the firmware harness: files and exit, served by QEMU's
 * -semihosting. Paths are relative to the directory QEMU runs in. */
#ifndef SPIKERL_SEMIHOST_H
#define SPIKERL_SEMIHOST_H

#include <stdint.h>

#define SH_MODE_READ_BINARY 1
#define SH_MODE_WRITE_BINARY 5

int32_t sh_open(const char *path, uint32_t length, uint32_t mode); /* handle, or -1 */
int32_t sh_read(int32_t handle, void *buffer, uint32_t bytes);    /* bytes NOT read (0: all read) */
int32_t sh_write(int32_t handle, const void *buffer, uint32_t bytes); /* bytes NOT written */
void sh_close(int32_t handle);
void sh_exit(int success) __attribute__((noreturn));

#endif /* SPIKERL_SEMIHOST_H */
