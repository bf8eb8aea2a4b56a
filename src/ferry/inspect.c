/* SPDX-License-Identifier: GPL-2.0-or-later */
/* inspect.c — ferry inspect: what an image is, read without mounting it. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include "ferry.h"
#include "fs.h"
#include "image.h"
#include "sif.h"

#define META_MAX (64u * 1024)

static const char inspect_help[] =
    "Usage: ferry inspect [--json] IMAGE\n"
    "\n"
    "Show what IMAGE is and check it, without mounting it: its kind (directory, squashfs or SIF)\n"
    "and size; for a SIF the global header (ID, architecture, creation time) and every data\n"
    "object (type, offset, size, filesystem); the squashfs superblock (compression, block size,\n"
    "inode count, bytes used); for a directory its runscript and labels (inside a squashfs or SIF\n"
    "they can be read with 'ferry exec IMAGE cat /.singularity.d/runscript').\n"
    "\n"
    "Options:\n"
    "  -j, --json    print one JSON object instead of text\n"
    "  -h, --help    show this help\n"
    "\n"
    "Examples:\n"
    "  ferry inspect lammps.sif\n"
    "  ferry inspect --json rootfs/ | jq .kind\n"
    "\n"
    "Exit status: 0 when IMAGE is an image ferry can run; 255 when it is not (truncated, corrupt,\n"
    "another architecture, not an image at all), after printing what could be read.\n"
    "See ferry-inspect(1).\n";

struct facts {
	const char *path;
	struct stat st;
	bool is_sif, is_squashfs, is_dir;
	struct ferry_sif *sif;
	bool have_sq;
	struct ferry_squashfs_info sq;
	uint64_t fs_offset, fs_size;
	char *runscript, *labels; /* directories only */
	struct ferry_error *problem;
};

static void facts_free(struct facts *f)
{
	ferry_sif_free(f->sif);
	free(f->runscript);
	free(f->labels);
	ferry_error_free(f->problem);
}

static void format_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if ((int64_t)tt != t || !gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
}

/* Text from the image, with control characters escaped. */
static void put_safe(FILE *out, const char *s, bool keep_newlines)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p == '\n' && keep_newlines) || *p == '\t' || (*p >= 0x20 && *p != 0x7f))
			fputc(*p, out);
		else
			fprintf(out, "\\x%02x", *p);
	}
}

static void put_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static char *read_in_dir(int dirfd, const char *path)
{
	int fd = ferry_open_in_root(dirfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0, 0);
	if (fd < 0)
		return NULL;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	struct ferry_error *err = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    ferry_read_all(fd, META_MAX, &buf, &len, &err) < 0) {
		ferry_error_free(err);
		buf = xasprintf("(larger than %u KiB, not shown)\n", META_MAX / 1024);
	}
	close(fd);
	return buf;
}

static void gather(int fd, struct facts *f)
{
	struct ferry_error **err = &f->problem;
	if (fstat(fd, &f->st) < 0) {
		ferry_error_set(err, errno, "stat");
		return;
	}
	if (S_ISDIR(f->st.st_mode)) {
		f->is_dir = true;
		f->runscript = read_in_dir(fd, "/.singularity.d/runscript");
		f->labels = read_in_dir(fd, "/.singularity.d/labels.json");
	} else if (S_ISREG(f->st.st_mode)) {
		char head[64] = {0};
		ssize_t n = pread(fd, head, sizeof(head), 0);
		if (n >= 4 && memcmp(head, "hsqs", 4) == 0) {
			f->is_squashfs = true;
			f->fs_size = (uint64_t)f->st.st_size;
			f->have_sq = ferry_squashfs_check_fd(fd, 0, f->fs_size, &f->sq, err) >= 0;
		} else if (n >= 42 && memcmp(head + 32, FERRY_SIF_MAGIC, sizeof(FERRY_SIF_MAGIC)) == 0) {
			f->is_sif = true;
			const struct ferry_sif_descriptor *p = NULL;
			if (ferry_sif_read(fd, &f->sif, err) >= 0 &&
			    ferry_sif_primary_squashfs(f->sif, &p, err) >= 0) {
				f->fs_offset = (uint64_t)p->offset;
				f->fs_size = (uint64_t)p->size;
				f->have_sq =
				    ferry_squashfs_check_fd(fd, f->fs_offset, f->fs_size, &f->sq, err) >= 0;
				if (!f->have_sq)
					ferry_error_wrap(err, "SIF primary partition (descriptor %u)",
							 p->index + 1);
			}
		}
	}
	/* The verdict is the one every ferry command applies. */
	if (!f->problem) {
		struct ferry_image_info info;
		(void)ferry_image_probe_fd(fd, &info, err);
	}
}

static const char *kind_of(const struct facts *f)
{
	return f->is_dir ? "directory" : f->is_sif ? "SIF" : f->is_squashfs ? "squashfs" : "unknown";
}

static void print_text(FILE *out, const struct facts *f)
{
	char t[64];
	fputs("Image:          ", out);
	put_safe(out, f->path, false);
	fprintf(out, "\nKind:           %s\n", kind_of(f));
	if (!f->is_dir)
		fprintf(out, "File size:      %" PRIu64 " bytes\n", (uint64_t)f->st.st_size);
	if (f->have_sq)
		fprintf(out, "Filesystem:     squashfs at offset %" PRIu64 ", %" PRIu64 " bytes\n",
			f->fs_offset, f->fs_size);

	if (f->sif) {
		const struct ferry_sif *s = f->sif;
		char id[37];
		ferry_sif_format_uuid(s->id, id);
		fprintf(out,
			"\nSIF header:\n  Version:      %s\n  ID:           %s\n  Architecture: ", s->version,
			id);
		put_safe(out, ferry_sif_arch_name(s->arch), false);
		fprintf(out, " (%s)\n", s->arch[0] ? s->arch : "none");
		format_time(s->ctime, t, sizeof(t));
		fprintf(out, "  Created:      %s\n", t);
		format_time(s->mtime, t, sizeof(t));
		fprintf(out, "  Modified:     %s\n  Launch:       ", t);
		_cleanup_free_ char *launch = xstrdup(s->launch);
		size_t ln = strlen(launch);
		if (ln > 0 && launch[ln - 1] == '\n')
			launch[ln - 1] = '\0';
		put_safe(out, launch, false);
		fprintf(out,
			"\n  Descriptors:  %zu used of %" PRId64 " (table at %" PRId64 ", %" PRId64
			" bytes)\n",
			s->n_descriptors, s->descriptors_total, s->descriptors_offset, s->descriptors_size);
		fprintf(out, "  Data:         at %" PRId64 ", %" PRId64 " bytes\n", s->data_offset,
			s->data_size);
		fprintf(out, "\nData objects:\n  %-4s %-6s %-6s %-12s %-12s %-12s %s\n", "ID", "GROUP",
			"LINK", "TYPE", "OFFSET", "SIZE", "DETAILS");
		for (size_t i = 0; i < s->n_descriptors; i++) {
			const struct ferry_sif_descriptor *d = &s->descriptors[i];
			char link[16];
			if (d->link == 0)
				snprintf(link, sizeof(link), "NONE");
			else
				snprintf(link, sizeof(link), "%s%u",
					 (d->link & FERRY_SIF_GROUP_MASK) ? "g" : "",
					 d->link & ~FERRY_SIF_GROUP_MASK);
			fprintf(out, "  %-4u %-6u %-6s %-12s %-12" PRId64 " %-12" PRId64 " ", d->id,
				d->group_id & ~FERRY_SIF_GROUP_MASK, link,
				ferry_sif_datatype_name(d->datatype), d->offset, d->size);
			if (d->datatype == FERRY_SIF_DATA_PARTITION)
				fprintf(out, "%s/%s/%s", ferry_sif_fstype_name(d->fstype),
					ferry_sif_parttype_name(d->parttype), ferry_sif_arch_name(d->arch));
			if (d->name[0]) {
				fputs(d->datatype == FERRY_SIF_DATA_PARTITION ? " " : "", out);
				fputs("name '", out);
				put_safe(out, d->name, false);
				fputc('\'', out);
			}
			fputc('\n', out);
		}
	}

	if (f->have_sq) {
		fprintf(out,
			"\nSquashfs:\n  Version:      %u.%u\n  Compression:  %s\n  Block size:   %" PRIu32
			"\n  Inodes:       %" PRIu32 "\n  Fragments:    %" PRIu32 "\n  Bytes used:   %" PRIu64
			"\n",
			f->sq.major, f->sq.minor, ferry_squashfs_compression_name(f->sq.compression),
			f->sq.block_size, f->sq.inodes, f->sq.fragments, f->sq.bytes_used);
		format_time(f->sq.mkfs_time, t, sizeof(t));
		fprintf(out, "  Created:      %s\n", t);
	}

	if (f->is_dir) {
		fputs("\nRunscript:", out);
		if (f->runscript) {
			fputs(" /.singularity.d/runscript\n", out);
			put_safe(out, f->runscript, true);
			if (f->runscript[0] && f->runscript[strlen(f->runscript) - 1] != '\n')
				fputc('\n', out);
		} else {
			fputs("      none\n", out);
		}
		if (f->labels) {
			fputs("\nLabels: /.singularity.d/labels.json\n", out);
			put_safe(out, f->labels, true);
			if (f->labels[0] && f->labels[strlen(f->labels) - 1] != '\n')
				fputc('\n', out);
		}
	} else if (f->have_sq) {
		fputs("\nRunscript:      inside the image; read it with "
		      "'ferry exec IMAGE cat /.singularity.d/runscript'\n",
		      out);
	}
	fprintf(out, "\nStatus:         %s\n",
		f->problem ? "NOT usable by ferry (see the error below)" : "OK");
}

static void print_json(FILE *out, const struct facts *f)
{
	char t[64];
	fputs("{\n  \"path\": ", out);
	put_json_string(out, f->path);
	fprintf(out, ",\n  \"kind\": \"%s\",\n  \"valid\": %s",
		f->is_dir	 ? "directory"
		: f->is_sif	 ? "sif"
		: f->is_squashfs ? "squashfs"
				 : "unknown",
		f->problem ? "false" : "true");
	if (f->problem) {
		fputs(",\n  \"error\": ", out);
		put_json_string(out, f->problem->message);
	}
	if (!f->is_dir)
		fprintf(out, ",\n  \"file_size\": %" PRIu64, (uint64_t)f->st.st_size);
	if (f->have_sq)
		fprintf(out,
			",\n  \"filesystem\": {\"type\": \"squashfs\", \"offset\": %" PRIu64
			", \"size\": %" PRIu64 "}",
			f->fs_offset, f->fs_size);
	if (f->sif) {
		const struct ferry_sif *s = f->sif;
		char id[37];
		ferry_sif_format_uuid(s->id, id);
		fputs(",\n  \"sif\": {\n    \"version\": ", out);
		put_json_string(out, s->version);
		fprintf(out, ",\n    \"id\": \"%s\",\n    \"arch\": \"%s\",\n    \"arch_code\": ", id,
			ferry_sif_arch_name(s->arch));
		put_json_string(out, s->arch);
		format_time(s->ctime, t, sizeof(t));
		fprintf(out, ",\n    \"created\": %" PRId64 ",\n    \"created_utc\": \"%s\"", s->ctime, t);
		format_time(s->mtime, t, sizeof(t));
		fprintf(out,
			",\n    \"modified\": %" PRId64
			",\n    \"modified_utc\": \"%s\",\n    \"launch_script\": ",
			s->mtime, t);
		put_json_string(out, s->launch);
		fprintf(out,
			",\n    \"descriptors_total\": %" PRId64 ",\n    \"descriptors_free\": %" PRId64
			",\n    \"descriptors_offset\": %" PRId64 ",\n    \"descriptors_size\": %" PRId64
			",\n    \"data_offset\": %" PRId64 ",\n    \"data_size\": %" PRId64
			",\n    \"objects\": [",
			s->descriptors_total, s->descriptors_free, s->descriptors_offset, s->descriptors_size,
			s->data_offset, s->data_size);
		for (size_t i = 0; i < s->n_descriptors; i++) {
			const struct ferry_sif_descriptor *d = &s->descriptors[i];
			fprintf(out,
				"%s\n      {\"id\": %u, \"group\": %u, \"link\": %u, \"link_is_group\": %s, "
				"\"type\": \"%s\", "
				"\"datatype\": %" PRId32 ", \"offset\": %" PRId64 ", \"size\": %" PRId64
				", \"name\": ",
				i ? "," : "", d->id, d->group_id & ~FERRY_SIF_GROUP_MASK,
				d->link & ~FERRY_SIF_GROUP_MASK,
				(d->link & FERRY_SIF_GROUP_MASK) && d->link ? "true" : "false",
				ferry_sif_datatype_name(d->datatype), d->datatype, d->offset, d->size);
			put_json_string(out, d->name);
			if (d->datatype == FERRY_SIF_DATA_PARTITION)
				fprintf(out,
					", \"fstype\": \"%s\", \"parttype\": \"%s\", \"arch\": \"%s\", "
					"\"primary\": %s",
					ferry_sif_fstype_name(d->fstype),
					ferry_sif_parttype_name(d->parttype), ferry_sif_arch_name(d->arch),
					d == s->primary ? "true" : "false");
			fputc('}', out);
		}
		fputs(s->n_descriptors ? "\n    ]\n  }" : "]\n  }", out);
	}
	if (f->have_sq)
		fprintf(out,
			",\n  \"squashfs\": {\"version\": \"%u.%u\", \"compression\": \"%s\", "
			"\"block_size\": %" PRIu32 ", \"inodes\": %" PRIu32 ", \"fragments\": %" PRIu32
			", \"bytes_used\": %" PRIu64 ", \"created\": %" PRIu32 "}",
			f->sq.major, f->sq.minor, ferry_squashfs_compression_name(f->sq.compression),
			f->sq.block_size, f->sq.inodes, f->sq.fragments, f->sq.bytes_used, f->sq.mkfs_time);
	if (f->is_dir) {
		fputs(",\n  \"runscript\": ", out);
		if (f->runscript)
			put_json_string(out, f->runscript);
		else
			fputs("null", out);
		fputs(",\n  \"labels_json\": ", out);
		if (f->labels)
			put_json_string(out, f->labels);
		else
			fputs("null", out);
	} else if (f->have_sq) {
		fputs(",\n  \"runscript\": null,\n  \"runscript_inside_image\": true", out);
	}
	fputs("\n}\n", out);
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool json = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(inspect_help, stdout);
			return 0;
		default:
			return cli_fail("unknown option '%s' for 'ferry inspect': see 'ferry inspect --help'",
					argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return cli_fail("usage: ferry inspect [--json] IMAGE (see 'ferry inspect --help')");

	struct facts f = {.path = argv[optind]};
	_cleanup_close_ int fd = open(f.path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return cli_fail("inspect '%s': %s", f.path, strerror(errno));
	gather(fd, &f);
	if (json)
		print_json(stdout, &f);
	else
		print_text(stdout, &f);
	fflush(stdout);
	int status = 0;
	if (f.problem) {
		struct ferry_error *e = TAKE_PTR(f.problem);
		ferry_error_wrap(&e, "image '%s'", f.path);
		status = cli_error(e);
	}
	facts_free(&f);
	return status;
}
