/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between kernels, settled by compat/Kbuild.include probing the
 * headers.  Only argument registers and the return value are touched here;
 * everything else the module uses has been stable since 3.10, except
 * READ_ONCE(), which is a macro and needs no probe.
 */
#ifndef _TOA_COMPAT_H
#define _TOA_COMPAT_H

#include <linux/compiler.h>
#include <linux/ptrace.h>
#include <linux/string.h>

/*
 * READ_ONCE()/WRITE_ONCE() came in 3.19 and reached RHEL 7 in a later minor
 * release (7.7 has them, 7.1 does not); before them ACCESS_ONCE() did the
 * same for scalars, which is all the module reads and writes this way.
 */
#ifndef READ_ONCE
#define READ_ONCE(x)		ACCESS_ONCE(x)
#define WRITE_ONCE(x, val)	(ACCESS_ONCE(x) = (val))
#endif

/* The n-th (from 0) integer argument of a probed function, at its entry. */
#if defined(TOA_HAVE_REGS_GET_KERNEL_ARGUMENT)
static inline unsigned long toa_regs_arg(struct pt_regs *regs, unsigned int n)
{
	return regs_get_kernel_argument(regs, n);
}
#elif defined(CONFIG_X86_64)
static inline unsigned long toa_regs_arg(struct pt_regs *regs, unsigned int n)
{
	switch (n) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	case 3: return regs->cx;
	}
	return 0;
}
#elif defined(CONFIG_ARM64)
static inline unsigned long toa_regs_arg(struct pt_regs *regs, unsigned int n)
{
	return n < 8 ? regs->regs[n] : 0;
}
#else
#error "toa: reading probed arguments is not implemented for this architecture"
#endif

/* Change what a probed function returns, from its return probe. */
#if defined(TOA_HAVE_REGS_SET_RETURN_VALUE)
static inline void toa_regs_set_return(struct pt_regs *regs, long value)
{
	regs_set_return_value(regs, value);
}
#elif defined(CONFIG_X86_64)
static inline void toa_regs_set_return(struct pt_regs *regs, long value)
{
	regs->ax = value;
}
#elif defined(CONFIG_ARM64)
static inline void toa_regs_set_return(struct pt_regs *regs, long value)
{
	regs->regs[0] = value;
}
#endif

/* --- getname's ftrace hook ---------------------------------------------- */
#if defined(TOA_HAVE_FTRACE_GET_REGS) && defined(CONFIG_DYNAMIC_FTRACE)
#include <linux/ftrace.h>

/*
 * DYNAMIC_FTRACE_WITH_ARGS: the callback gets the argument registers without
 * FTRACE_OPS_FL_SAVE_REGS (x86 saves 9 registers instead of 21 and skips the
 * flags) and may still move the instruction pointer.  Before 6.2 only x86
 * had it, with struct ftrace_regs wrapping a partly filled pt_regs.
 */
#if defined(CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS) && \
	(defined(TOA_HAVE_FTRACE_REGS_SET_IP) || defined(TOA_HAVE_FTRACE_IP_SET)) && \
	(defined(TOA_HAVE_FTRACE_REGS_GET_ARGUMENT) || defined(CONFIG_X86_64))
#define TOA_FTRACE_IPMODIFY_FLAGS	FTRACE_OPS_FL_IPMODIFY

static __always_inline unsigned long toa_fregs_arg(struct ftrace_regs *fregs,
						   unsigned int n)
{
#ifdef TOA_HAVE_FTRACE_REGS_GET_ARGUMENT
	return ftrace_regs_get_argument(fregs, n);
#else
	return toa_regs_arg(&fregs->regs, n);
#endif
}

static __always_inline void toa_fregs_set_ip(struct ftrace_regs *fregs,
					     unsigned long ip)
{
#ifdef TOA_HAVE_FTRACE_REGS_SET_IP
	ftrace_regs_set_instruction_pointer(fregs, ip);
#else
	ftrace_instruction_pointer_set(fregs, ip);
#endif
}
#else
#define TOA_FTRACE_IPMODIFY_FLAGS \
	(FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY)

/* With FTRACE_OPS_FL_SAVE_REGS there are always registers. */
static __always_inline unsigned long toa_fregs_arg(struct ftrace_regs *fregs,
						   unsigned int n)
{
	struct pt_regs *regs = ftrace_get_regs(fregs);

	return regs ? toa_regs_arg(regs, n) : 0;
}

static __always_inline void toa_fregs_set_ip(struct ftrace_regs *fregs,
					     unsigned long ip)
{
	instruction_pointer_set(ftrace_get_regs(fregs), ip);
}
#endif

/*
 * The address just past the call that ftrace patches in at func's entry
 * (after its endbr64 where the kernel has IBT): calling it runs func without
 * going through ftrace.  0 where that cannot be done: the entry does not
 * hold the 5-byte call or nop expected, indirect branch tracking is enforced
 * (the body is no indirect branch target), or kCFI checks indirect calls.
 */
#if defined(CONFIG_X86_64) && !defined(CONFIG_CFI_CLANG)
#include <asm/cpufeature.h>

static inline unsigned long toa_ftrace_body(unsigned long func)
{
	static const u8 endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };
	static const u8 nop5[] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	const u8 *site = (const u8 *)func;

#ifdef X86_FEATURE_IBT
	if (cpu_feature_enabled(X86_FEATURE_IBT))
		return 0;
#endif
	if (!memcmp(site, endbr64, sizeof(endbr64)))
		site += sizeof(endbr64);
	if (site[0] != 0xe8 && memcmp(site, nop5, sizeof(nop5)))
		return 0;
	return (unsigned long)site + MCOUNT_INSN_SIZE;
}
#else
static inline unsigned long toa_ftrace_body(unsigned long func)
{
	return 0;
}
#endif
#endif /* TOA_HAVE_FTRACE_GET_REGS && CONFIG_DYNAMIC_FTRACE */

#endif /* _TOA_COMPAT_H */
