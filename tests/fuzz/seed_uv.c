// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A miniature of what uvscope looks for in a libuv program, compiled into
 * the ELF seeds of the fuzz corpus (tests/fuzz/make-seeds.py): libuv's
 * entry points and phase functions, uv_version's "mov $imm32, %eax; ret",
 * default_loop_struct, Node's release URL, calls through the PLT, and
 * call frames with CFI for the unwinder. */
#include <stdio.h>
#include <stdlib.h>

const char uvs_seed_url[] =
	"https://nodejs.org/download/release/v20.20.2/node-v20.20.2.tar.gz";
static char default_loop_struct[848];
static void *default_loop_ptr;
volatile int uvs_seed_ticks; /* so that no phase is optimised away */

unsigned int uv_version(void)
{
	return 0x012e00;
}

void *uv_default_loop(void)
{
	if (!default_loop_ptr)
		default_loop_ptr = default_loop_struct;
	return default_loop_ptr;
}

__attribute__((noinline)) void uv__run_timers(void *loop)
{
	puts(loop ? "timers" : "");
}
__attribute__((noinline)) void uv__run_idle(void *loop)
{
	uvs_seed_ticks += loop != NULL;
}

__attribute__((noinline)) void uv__run_prepare(void *loop)
{
	uvs_seed_ticks += loop != NULL;
}

__attribute__((noinline)) void uv__run_check(void *loop)
{
	uvs_seed_ticks += loop != NULL;
}

__attribute__((noinline)) void uv__io_poll(void *loop, int timeout)
{
	char *p = malloc(timeout + 1);

	uvs_seed_ticks += p != loop;
	free(p);
}

__attribute__((noinline)) int uv_run(void *loop, int mode)
{
	uv__run_timers(loop);
	uv__run_idle(loop);
	uv__run_prepare(loop);
	uv__io_poll(loop, mode);
	uv__run_check(loop);
	return uvs_seed_ticks;
}

void node_module_register(void *m)
{
	(void)m;
}

int main(int argc, char **argv)
{
	int n = uv_run(uv_default_loop(), argc);

	return n + (argv[0] != NULL);
}
