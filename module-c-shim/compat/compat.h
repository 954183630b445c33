/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between kernels, settled by compat/Kbuild.include probing the
 * headers.  Only argument registers and the return value are touched here;
 * everything else the module uses has been stable since 3.10.
 */
#ifndef _TOA_COMPAT_H
#define _TOA_COMPAT_H

#include <linux/ptrace.h>

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

#endif /* _TOA_COMPAT_H */
