/* A slower disk for the order server, for the benchmark only: every fsync/fdatasync of the process it is
 * preloaded into takes CDCSYNC_FSYNC_DELAY_US microseconds longer (as on a network volume).
 *   cc -shared -fPIC -O2 -o slow_fsync.so bench/slow_fsync.c -ldl
 *   LD_PRELOAD=$PWD/slow_fsync.so CDCSYNC_FSYNC_DELAY_US=3000 pg_ctl start ...
 * bench/run.sh --order-fsync-delay-us N builds it and restarts the order server with it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void delay(void) {
  static long us = -1;
  if (us < 0) {
    const char *v = getenv("CDCSYNC_FSYNC_DELAY_US");
    us = v ? atol(v) : 0;
  }
  if (us > 0) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
  }
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  delay();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  delay();
  return real(fd);
}
