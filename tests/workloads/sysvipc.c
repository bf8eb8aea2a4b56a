/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sysvipc KIND: makes one System V IPC object of KIND (msg, sem or shm) in its IPC namespace,
 * prints "ID KIND", then waits for a signal. A test workload: a checkpoint must not lose it
 * silently. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int id = -1;
	if (argc == 2 && strcmp(argv[1], "msg") == 0) {
		id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
		struct {
			long type;
			char text[8];
		} m = {1, "ferry"};
		if (id >= 0 && msgsnd(id, &m, sizeof(m.text), 0) < 0)
			id = -1;
	} else if (argc == 2 && strcmp(argv[1], "sem") == 0) {
		id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	} else if (argc == 2 && strcmp(argv[1], "shm") == 0) {
		id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	} else {
		fprintf(stderr, "usage: sysvipc msg|sem|shm\n");
		return 2;
	}
	if (id < 0) {
		perror("sysvipc");
		return 1;
	}
	printf("%d %s\n", id, argv[1]);
	fflush(stdout);
	for (;;)
		pause();
}
