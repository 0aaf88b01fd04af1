# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# libbpf-tools style: bpf/foo.bpf.c -> .output/foo.bpf.o -> .output/foo.skel.h
# -> ./uvscope. Nothing is generated into the source tree.
OUTPUT ?= .output
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
BPFTOOL ?= $(shell command -v bpftool || echo /usr/sbin/bpftool)
CC ?= gcc
PYTHON ?= /usr/bin/python3
PREFIX ?= /usr/local
ARCH := x86

WARN := -Wall -Wextra -Werror -Wno-unused-parameter
CWARN := $(WARN) -Wno-format-truncation
CFLAGS ?= -g -O2
CPPFLAGS += -D_GNU_SOURCE
INCLUDES := -I$(OUTPUT) -Ibpf -Ilib -Icli
DEPFLAGS = -MMD -MP
LIBS := -lbpf -lelf -lz -ljansson -lm -lpthread -lstdc++ \
	-lunwind-ptrace -lunwind-generic -lunwind

BPF_SRCS := $(wildcard bpf/*.bpf.c)
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
LIB_SRCS := $(wildcard lib/*.c)
CLI_SRCS := $(wildcard cli/*.c)
OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(LIB_SRCS) $(CLI_SRCS))
ASAN_OBJS := $(patsubst %.c,$(OUTPUT)/asan/%.o,$(LIB_SRCS) $(CLI_SRCS))
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# kept, though only a pattern rule names them (a blanket .SECONDARY would
# also make a missing dependency list count for nothing)
.SECONDARY: $(SKELS:.skel.h=.bpf.o) $(OUTPUT)/vmlinux.h
.PHONY: all clean deps demo check test asan install bench fixtures format fuzz \
	fuzz-build
all: uvscope

deps:
	$(Q)sh scripts/deps.sh

$(OUTPUT) $(OUTPUT)/lib $(OUTPUT)/cli $(OUTPUT)/asan/lib $(OUTPUT)/asan/cli:
	$(Q)mkdir -p $@

$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c bpf/%.h $(OUTPUT)/%.bpf.d $(OUTPUT)/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) $(WARN) \
		$(DEPFLAGS) -I$(OUTPUT) -Ibpf -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# Each object depends on the headers it includes, as the compiler lists
# them (DEPFLAGS: .d files beside the objects); the skeletons are made
# before any compile, for the first build, which has no list yet. An
# object without its list (built before there were lists) is rebuilt: a
# missing .d is made by its empty rule (DEPFILES, at the end), which makes
# it new.
$(OUTPUT)/%.o: %.c $(OUTPUT)/%.d | $(SKELS) $(OUTPUT)/lib $(OUTPUT)/cli
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) $(CWARN) $(INCLUDES) -c $< -o $@

$(OUTPUT)/asan/%.o: %.c $(OUTPUT)/asan/%.d | $(SKELS) $(OUTPUT)/asan/lib $(OUTPUT)/asan/cli
	$(call msg,CC-ASAN,$@)
	$(Q)$(CC) $(CPPFLAGS) $(DEPFLAGS) -g -O1 $(SAN) $(CWARN) $(INCLUDES) -c $< -o $@

uvscope: $(OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LIBS) -o $@.tmp && mv -f $@.tmp $@

# The same program built with AddressSanitizer and UBSan, for the tests.
$(OUTPUT)/uvscope-asan: $(ASAN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(SAN) $^ $(LIBS) -o $@.tmp && mv -f $@.tmp $@
asan: $(OUTPUT)/uvscope-asan

fixtures:
	$(Q)$(MAKE) -s -C tests/fixtures OUT=$(abspath $(OUTPUT))/fixtures

# Unit tests of lib/, built with the sanitizers.
$(OUTPUT)/unit/%: tests/unit/%.c $(filter-out $(OUTPUT)/asan/cli/%,$(ASAN_OBJS))
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CPPFLAGS) $(DEPFLAGS) -MF $@.d -g -O1 $(SAN) $(CWARN) $(INCLUDES) $< \
		$(filter-out $(OUTPUT)/asan/cli/%,$(ASAN_OBJS)) $(LIBS) -o $@
UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/unit/%,$(wildcard tests/unit/*.c))

# libFuzzer harnesses, one per parser of untrusted input: each
# tests/fuzz/fuzz_NAME.c becomes $(OUTPUT)/fuzz_NAME, linked with the whole
# library built by clang with ASan and UBSan (a harness calls what it
# needs). tests/test_fuzz.py runs each from tests/fuzz/corpus/NAME/: for
# FUZZ_CHECK_SECONDS in `make check`, FUZZ_SECONDS in `make fuzz` (0: build
# only).
FUZZ_SECONDS ?= 300
FUZZ_CHECK_SECONDS ?= 5
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_OBJS := $(patsubst %.c,$(OUTPUT)/fuzz/%.o,$(LIB_SRCS))
FUZZERS := $(patsubst tests/fuzz/fuzz_%.c,$(OUTPUT)/fuzz_%,\
	$(wildcard tests/fuzz/fuzz_*.c))

$(OUTPUT)/fuzz/lib:
	$(Q)mkdir -p $@

$(OUTPUT)/fuzz/%.o: %.c $(OUTPUT)/fuzz/%.d | $(SKELS) $(OUTPUT)/fuzz/lib
	$(call msg,CC-FUZZ,$@)
	$(Q)$(CLANG) $(CPPFLAGS) $(DEPFLAGS) -g -O1 -fsanitize=fuzzer-no-link \
		$(FUZZ_SAN) $(WARN) $(INCLUDES) -c $< -o $@

$(OUTPUT)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(CPPFLAGS) $(DEPFLAGS) -MF $@.d -g -O1 -fsanitize=fuzzer \
		$(FUZZ_SAN) $(WARN) $(INCLUDES) $< $(FUZZ_OBJS) $(LIBS) -o $@

fuzz-build: $(FUZZERS)

# and the fault trials, FAULT_TRIALS each (20 in make check): uvscope
# SIGKILLed at random moments, targets that exit or exec during the attach
FAULT_TRIALS ?= 200
fuzz: fuzz-build
ifneq ($(FUZZ_SECONDS),0)
	$(Q)UVSCOPE_FUZZ_SECONDS=$(FUZZ_SECONDS) UVSCOPE_FUZZ_KEEP=1 \
		$(PYTHON) tests/run.py fuzz_
endif
	$(Q)$(MAKE) -s uvscope asan fixtures
	$(Q)UVSCOPE_FAULT_TRIALS=$(FAULT_TRIALS) \
		$(PYTHON) tests/run.py faults_sigkill faults_target_exits

# The README's first command: a loop report of the bundled demo target.
demo: deps
	$(Q)$(MAKE) -s uvscope fixtures
	$(Q)sh scripts/demo.sh

# The README's second command: install, build, run every test.
check: deps
	$(Q)$(MAKE) -s uvscope asan fixtures fuzz-build $(UNIT_TESTS)
	$(Q)sh scripts/fetch-node.sh 18.20.8 20.20.2 22.12.0 24.11.1 >/dev/null
	$(Q)UVSCOPE_FUZZ_SECONDS=$(FUZZ_CHECK_SECONDS) $(PYTHON) tests/run.py

test: check

bench: deps
	$(Q)$(MAKE) -s uvscope fixtures
	$(Q)sh bench/run.sh

install: uvscope
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/uvscope
	install -m 0755 uvscope $(DESTDIR)$(PREFIX)/bin/uvscope
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/uvscope/
	install -d $(DESTDIR)$(PREFIX)/share/uvscope/profiles/libuv
	install -m 0644 profiles/libuv/*.json $(DESTDIR)$(PREFIX)/share/uvscope/profiles/libuv/

format:
	clang-format -i bpf/*.c bpf/*.h lib/*.c lib/*.h cli/*.c cli/*.h tests/unit/*.c tests/fixtures/*.c

clean:
	rm -rf $(OUTPUT) uvscope

DEPFILES := $(SKELS:.skel.h=.bpf.d) $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d) \
	$(FUZZ_OBJS:.o=.d)
$(DEPFILES):
-include $(DEPFILES) $(FUZZERS:=.d) $(UNIT_TESTS:=.d)
