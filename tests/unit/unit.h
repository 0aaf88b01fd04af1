/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* libuv-style assertions that print both sides. */
#ifndef UVS_UNIT_H
#define UVS_UNIT_H
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_BASE(cond, fmt, ...)                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: assertion failed: " fmt "\n", \
				__FILE__, __LINE__, __VA_ARGS__);            \
			exit(1);                                             \
		}                                                            \
	} while (0)
#define ASSERT(c) ASSERT_BASE(c, "%s", #c)
#define ASSERT_EQ(a, b)                                                     \
	ASSERT_BASE((int64_t)(a) == (int64_t)(b),                           \
		    "%s == %s (%" PRId64 " vs %" PRId64 ")", #a, #b,         \
		    (int64_t)(a), (int64_t)(b))
#define ASSERT_U64_EQ(a, b)                                                 \
	ASSERT_BASE((uint64_t)(a) == (uint64_t)(b),                         \
		    "%s == %s (%" PRIu64 " vs %" PRIu64 ")", #a, #b,         \
		    (uint64_t)(a), (uint64_t)(b))
#define ASSERT_NEAR(a, b, tol)                                              \
	ASSERT_BASE((a) - (b) <= (tol) && (b) - (a) <= (tol),               \
		    "%s ~ %s (%g vs %g, tolerance %g)", #a, #b, (double)(a), \
		    (double)(b), (double)(tol))
#define ASSERT_STR_EQ(a, b)                                                 \
	ASSERT_BASE(!strcmp((a), (b)), "%s == %s (\"%s\" vs \"%s\")", #a,   \
		    #b, (a), (b))
#endif
