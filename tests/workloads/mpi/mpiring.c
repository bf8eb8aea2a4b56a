/* SPDX-License-Identifier: GPL-2.0-or-later */
/* mpiring — a self-checking MPI program for tests/integration/mpi.bats (built there with mpicc;
 * not with the static workloads of tests/workloads, which need no MPI).
 *
 *   mpiring ITERATIONS USEC
 *
 * Every iteration, each rank sends a block of numbers that says who sent it and in which
 * iteration to the next rank of a ring, tagged with the iteration, and receives the previous
 * rank's; then all ranks sum, over the whole job, a number each rank derives from the
 * iteration (MPI_Allreduce). Each rank checks every block it receives and every sum: a message
 * lost, received twice, out of order or altered, or a rank that went back or ahead of the
 * others, shows as a wrong block or a wrong sum. Rank 0 prints "it N" every 50 iterations, and at
 * the end "RESULT OK iterations=N ranks=R" or "RESULT FAIL ...", after the ranks have summed
 * their counts of errors. USEC: a pause after each iteration (so that a run lasts). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BLOCK 65536 /* numbers a message: 512 KiB */

int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	int rank = 0, size = 1;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
	long usec = argc > 2 ? strtol(argv[2], NULL, 10) : 10000;
	double *out = malloc(BLOCK * sizeof(double)), *in = malloc(BLOCK * sizeof(double));
	if (!out || !in || iters <= 0 || usec < 0)
		MPI_Abort(MPI_COMM_WORLD, 2);
	long bad = 0;
	int next = (rank + 1) % size, prev = (rank + size - 1) % size;
	for (long it = 0; it < iters; it++) {
		for (int i = 0; i < BLOCK; i++)
			out[i] = rank * 1e6 + (double)it + i * 1e-3;
		MPI_Sendrecv(out, BLOCK, MPI_DOUBLE, next, (int)(it % 30000), in, BLOCK, MPI_DOUBLE, prev,
			     (int)(it % 30000), MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		for (int i = 0; i < BLOCK; i++)
			if (in[i] != prev * 1e6 + (double)it + i * 1e-3) {
				bad++;
				break;
			}
		long long mine = (long long)rank * it + 1, sum = 0;
		MPI_Allreduce(&mine, &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
		if (sum != (long long)it * size * (size - 1) / 2 + size)
			bad++;
		if (rank == 0 && it % 50 == 0) {
			printf("it %ld\n", it);
			fflush(stdout);
		}
		if (usec)
			usleep((useconds_t)usec);
	}
	long all = 0;
	MPI_Allreduce(&bad, &all, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
	if (rank == 0) {
		printf("RESULT %s iterations=%ld ranks=%d errors=%ld\n", all ? "FAIL" : "OK", iters, size, all);
		fflush(stdout);
	}
	free(out);
	free(in);
	MPI_Finalize();
	return all ? 1 : 0;
}
