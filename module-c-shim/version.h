/* SPDX-License-Identifier: GPL-2.0 */
/* The one place the module's version is written; packaging reads it here. */
#ifndef _TOA_VERSION_H
#define _TOA_VERSION_H
#define TOA_VERSION "0.1.0"
#endif
