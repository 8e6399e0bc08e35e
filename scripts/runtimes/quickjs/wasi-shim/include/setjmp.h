/* boxproxy WASI shim: dtoa.c includes <setjmp.h> without using it; bookworm's wasi-libc has no setjmp. */
#ifndef BOXPROXY_WASI_SETJMP_H
#define BOXPROXY_WASI_SETJMP_H
#endif
