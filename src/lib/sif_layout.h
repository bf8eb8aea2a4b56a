/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sif_layout.h — byte offsets of the SIF v1 header and descriptors (sif.c reads, sif_write.c
 * writes). */
#ifndef FERRY_SIF_LAYOUT_H
#define FERRY_SIF_LAYOUT_H

/* Header field offsets. */
#define H_LAUNCH 0
#define H_MAGIC 32
#define H_VERSION 42
#define H_ARCH 45
#define H_ID 48
#define H_CTIME 64
#define H_MTIME 72
#define H_DFREE 80
#define H_DTOTAL 88
#define H_DOFF 96
#define H_DSIZE 104
#define H_DATAOFF 112
#define H_DATASIZE 120

/* Descriptor field offsets. */
#define D_DATATYPE 0
#define D_USED 4
#define D_ID 5
#define D_GROUP 9
#define D_LINK 13
#define D_OFFSET 17
#define D_SIZE 25
#define D_PADDED 33
#define D_CTIME 41
#define D_MTIME 49
#define D_UID 57
#define D_GID 65
#define D_NAME 73
#define D_EXTRA 201

_Static_assert(D_EXTRA + FERRY_SIF_EXTRA_LEN == FERRY_SIF_DESCRIPTOR_SIZE, "descriptor layout");
_Static_assert(H_DATASIZE + 8 == FERRY_SIF_HEADER_SIZE, "header layout");

/* The descriptor table ferry writes: 48 entries, like Apptainer. */
#define TABLE_BYTES ((size_t)FERRY_SIF_DESCRIPTORS_DEFAULT * FERRY_SIF_DESCRIPTOR_SIZE)

/* Where ferry puts the partition: after the 48-descriptor table, aligned like Apptainer. */
#define DATA_OFFSET ((int64_t)FERRY_SIF_DESCRIPTORS_OFFSET + (int64_t)TABLE_BYTES)
#define PART_OFFSET (((DATA_OFFSET + FERRY_SIF_ALIGN - 1) / FERRY_SIF_ALIGN) * FERRY_SIF_ALIGN)

#endif
