# shellcheck shell=bash
# apps.bash — the real applications of the benchmarks (source after common.bash).
#
# Each runs from the benchmark image (Debian's packages), as $BUSER, in a directory WORKDIR
# under the user's home (bound into the container at the same path), one process, one core,
# its output in files of WORKDIR; at its end the command writes WORKDIR/done (its exit status).
#
#   hpl      HPL as the Debian package ships it: inside hpcc (HPC Challenge 1.5), which runs its
#            other tests (RandomAccess, PTRANS, DGEMM, STREAM, FFT) first, sized from the same
#            N, then HPL last. Input hpccinf.txt: one N, NB 128, a 1x1 grid. SIZE = N: the HPL
#            matrix is N*N*8 bytes (N=5000: 200 MB), allocated when the HPL section begins.
#            Result: the scaled residual (PASSED line) and the norms of hpcc's summary.
#            Run time reported: HPL's own time (the WR line), which spans any migration.
#   lammps   the classic Lennard-Jones melt (in.melt, written here): fcc lattice of SIZE^3 unit
#            cells (4*SIZE^3 atoms), NVE, thermo every tenth of the run in full precision; the
#            number of steps is chosen from SIZE for about LMP_ATOM_STEPS atom-steps (~40 s).
#            Result: the last thermo line. Run time: LAMMPS' "Loop time".
#   gromacs  a box of SPC/E water (gmx solvate from spc216.gro, OPLS-AA), SIZE nm a side
#            (4: ~6500 atoms), PME, v-rescale with a fixed seed, steps chosen from SIZE for
#            about GMX_ATOM_STEPS atom-steps (~40 s); the .tpr is made by gmx grompp inside the
#            container. mdrun -nt 1 -reprod -pin off -nb cpu: one thread, no timing-dependent
#            tuning (DLB, PME tuning), so that two runs give bit-identical output. Result: the
#            last energies of md.log and the SHA-256 of md.edr and md.gro (bit-identical
#            between a plain and a migrated run). Run time: mdrun's wall time.
#            Debian's gmx is built to use the rdtscp instruction and refuses to start on a CPU
#            without it (some virtual CPUs): there it is not run (app_unrunnable says why).
#   vina     AutoDock Vina 1.2 docking a flexible ligand (a benzene ring with a two-torsion
#            side chain) into a synthetic receptor (a spherical pocket of SIZE-independent ~340
#            atoms, written here), one CPU, a fixed seed; SIZE = the exhaustiveness (the number
#            of Monte Carlo searches; 48: ~20 s). Result: the REMARK VINA RESULT lines and the
#            SHA-256 of the poses written (bit-identical between runs). Run time: Vina's wall
#            time, taken around it in the container.
#
# OpenMPI (hpcc and lmp link libmpi; gmx uses its own thread-MPI). Started without mpirun, an
# OpenMPI 4.1 program makes a "singleton" that forks an `orted --hnp` and talks to it over a
# loopback TCP connection, plus PMIx unix sockets and shared segments in /tmp/ompi.*: CRIU then
# refuses ("inet: Connected TCP socket, consider using --tcp-established"; ferry enables that
# only for --net instances) and the segments live in the node's /tmp. Hence, in the command:
#   OMPI_MCA_ess_singleton_isolated=1  no orted: no sockets, no PMIx server, no /tmp segments
#   OMPI_MCA_btl=self, OMPI_MCA_pml=ob1  one rank, talking to itself only: else the TCP BTL keeps
#                                      listening sockets (a restore needs their ports free on
#                                      the destination); no shared-memory BTL, no other PML
#   OMPI_MCA_orte_tmpdir_base=WORKDIR  its (then unused) session directory beside the job, not in
#                                      the node's /tmp: it is there on the destination too
#   OMPI_MCA_hwloc_base_binding_policy=none  no CPU binding carried to another node
#   OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1  one thread: reproducible sums, one core per run
# What remains of OpenMPI in the process is a deleted file /dev/shm/open_mpi.0000 on the
# container's own /dev, which CRIU saves as a ghost file. With these, each application is
# checkpointed, restored and migrated (diskless and default) mid-run and ends with a result
# identical to a run without migration.

LMP_ATOM_STEPS=${LMP_ATOM_STEPS:-70000000} # ~1.8e6 atom-steps/s on one core here
GMX_ATOM_STEPS=${GMX_ATOM_STEPS:-32000000} # ~0.9e6 atom-steps/s on one core here

# the environment of every application (see above); WORKDIR appended by app_cmd
APP_ENV="OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_btl=self OMPI_MCA_pml=ob1"
APP_ENV+=" OMPI_MCA_hwloc_base_binding_policy=none OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"
APP_ENV+=" GMX_DISABLE_GPU_DETECTION=1 GMX_MAXBACKUP=-1"

app_list() { echo hpl lammps gromacs vina; }

# app_unrunnable NAME: why NAME cannot run on this machine (status 1, nothing printed, when it can).
app_unrunnable() {
	case $1 in
	gromacs)
		# GROMACS' printhardware.cpp: "The gmx mdrun executable was compiled to use the rdtscp
		# CPU instruction. However, this is not supported by the current hardware"
		! grep -qw rdtscp /proc/cpuinfo || return 1
		echo "Debian's gmx is built to use the rdtscp instruction, which this CPU lacks: mdrun refuses to start"
		;;
	*) return 1 ;;
	esac
}

# app_points NAME [smoke]: the sizes to run, one per line (smoke: one tiny size).
app_points() {
	local smoke=${2:-}
	case $1 in
	hpl)
		# whole hpcc runs on one core here (its other tests first, then HPL; reference BLAS),
		# resident at the peak: N 3000: 20 s (HPL 4 s), 80 MiB; 4000: 40 s (9 s), 150 MiB;
		# 5000: 84 s (17 s), 200 MiB; 6000 would be 155 s (the DGEMM tests grow as N^3).
		# smoke: 2500, 9 s (HPL 2 s). At 2000 HPL lasted 1 s, and a CI run's migration, which
		# starts once the matrix is resident, lost the race with the end of the application.
		# shellcheck disable=SC2086 # a list
		if [ -n "$smoke" ]; then echo 2500; else printf '%s\n' ${HPL_POINTS:-3000 4000 5000}; fi
		;;
	lammps)
		# 30: 108000 atoms, 640 steps, 37 s, 63 MiB resident
		if [ -n "$smoke" ]; then echo 10x2000; else echo 30; fi
		;;
	gromacs)
		# 4: 6495 atoms, 5000 steps, 36 s, 24 MiB resident
		if [ -n "$smoke" ]; then echo 2.5x3000; else echo 4; fi
		;;
	vina)
		# exhaustiveness 48: ~20 s, 12: ~6 s
		# shellcheck disable=SC2086 # a list
		if [ -n "$smoke" ]; then echo 12; else printf '%s\n' ${VINA_POINTS:-48}; fi
		;;
	*) die "unknown application '$1'" ;;
	esac
}

# lmp_size SIZE: "L STEPS" of a LAMMPS SIZE: L (cells a side; steps for about LMP_ATOM_STEPS
# atom-steps, a multiple of 10, at least 100) or LxSTEPS.
lmp_size() {
	[[ $1 =~ ^([0-9]+)(x([0-9]+))?$ ]] || die "lammps: SIZE is CELLS or CELLSxSTEPS, not '$1'"
	awk -v l="${BASH_REMATCH[1]}" -v s="${BASH_REMATCH[3]}" -v b="$LMP_ATOM_STEPS" 'BEGIN {
		if (s == "") { s = int(b / (4 * l * l * l) / 10) * 10; if (s < 100) s = 100 }
		print l, s }'
}

# gmx_size SIZE: "EDGE STEPS" of a GROMACS SIZE: EDGE (nm; steps for about GMX_ATOM_STEPS
# atom-steps at ~100 atoms per nm^3, a multiple of 1000, at least 1000: energies are written
# every tenth of the run, which grompp wants a multiple of nstcalcenergy = 100) or EDGExSTEPS
# (STEPS a multiple of 1000, or of 100 with STEPS / 10 one too).
gmx_size() {
	[[ $1 =~ ^([0-9]+(\.[0-9]+)?)(x([0-9]+))?$ ]] || die "gromacs: SIZE is NM or NMxSTEPS, not '$1'"
	awk -v e="${BASH_REMATCH[1]}" -v s="${BASH_REMATCH[4]}" -v b="$GMX_ATOM_STEPS" 'BEGIN {
		if (s == "") { s = int(b / (100 * e * e * e) / 1000) * 1000; if (s < 1000) s = 1000 }
		print e, s }'
}

# app_workdir_ok WORKDIR: an absolute path under the user's home (app_prepare removes it).
app_workdir_ok() {
	[ -n "${BHOME:-}" ] || bench_user
	case $1 in
	"$BHOME"/?*) [[ $1 != *..* ]] ;;
	*) false ;;
	esac || die "application directory '$1' is not under $BHOME"
}

# as_buser_write FILE: stdin to FILE, as the user.
as_buser_write() { as_buser tee "$1" >/dev/null; }

# app_prepare NAME SIZE WORKDIR: WORKDIR, made anew by the user, with every input of NAME at SIZE.
app_prepare() {
	local app=$1 size=$2 dir=$3
	app_workdir_ok "$dir"
	rm -rf "$dir"
	as_buser mkdir -p "$dir" || return 1
	case $app in
	hpl) hpl_prepare "$size" "$dir" ;;
	lammps) lmp_prepare "$size" "$dir" ;;
	gromacs) gmx_prepare "$size" "$dir" ;;
	vina) vina_prepare "$size" "$dir" ;;
	*) die "unknown application '$app'" ;;
	esac
}

hpl_prepare() {
	local n=$1 dir=$2
	[[ $n =~ ^[0-9]+$ ]] || die "hpl: N must be a number, not '$n'"
	as_buser_write "$dir/hpccinf.txt" <<-EOF
		HPLinpack benchmark input file
		Innovative Computing Laboratory, University of Tennessee
		HPL.out      output file name (if any)
		8            device out (6=stdout,7=stderr,file)
		1            # of problems sizes (N)
		$n         Ns
		1            # of NBs
		128          NBs
		0            PMAP process mapping (0=Row-,1=Column-major)
		1            # of process grids (P x Q)
		1            Ps
		1            Qs
		16.0         threshold
		1            # of panel fact
		2            PFACTs (0=left, 1=Crout, 2=Right)
		1            # of recursive stopping criterium
		4            NBMINs (>= 1)
		1            # of panels in recursion
		2            NDIVs
		1            # of recursive panel fact.
		1            RFACTs (0=left, 1=Crout, 2=Right)
		1            # of broadcast
		1            BCASTs (0=1rg,1=1rM,2=2rg,3=2rM,4=Lng,5=LnM)
		1            # of lookahead depth
		1            DEPTHs (>=0)
		2            SWAP (0=bin-exch,1=long,2=mix)
		64           swapping threshold
		0            L1 in (0=transposed,1=no-transposed) form
		0            U  in (0=transposed,1=no-transposed) form
		1            Equilibration (0=no,1=yes)
		8            memory alignment in double (> 0)
		##### This line (no. 32) is ignored (it serves as a separator). ######
		0                               Number of additional problem sizes for PTRANS
		1200 10000 30000                values of N
		0                               number of additional blocking sizes for PTRANS
		40 9 8 13 13 20 16 32 64        values of NB
	EOF
}

# lmp_melt L STEPS: the input of the Lennard-Jones melt, L^3 fcc cells, STEPS steps, thermo
# every tenth of the run in full precision (tests/integration/lammps.bats writes it too).
lmp_melt() {
	cat <<-EOF
		# 3d Lennard-Jones melt: ${1}^3 fcc cells, $2 steps
		units		lj
		atom_style	atomic
		lattice		fcc 0.8442
		region		box block 0 $1 0 $1 0 $1
		create_box	1 box
		create_atoms	1 box
		mass		1 1.0
		velocity	all create 3.0 87287 loop geom
		pair_style	lj/cut 2.5
		pair_coeff	1 1 1.0 1.0 2.5
		neighbor	0.3 bin
		neigh_modify	every 20 delay 0 check no
		fix		1 all nve
		thermo		$(($2 / 10))
		thermo_modify	format float %20.15g flush yes
		run		$2
	EOF
}

lmp_prepare() {
	local dir=$2 l steps
	read -r l steps < <(lmp_size "$1")
	[ -n "$steps" ] || return 1
	lmp_melt "$l" "$steps" | as_buser_write "$dir/in.melt"
}

gmx_prepare() {
	local dir=$2 edge steps
	read -r edge steps < <(gmx_size "$1")
	[ -n "$steps" ] || return 1
	as_buser_write "$dir/md.mdp" <<-EOF
		; SPC/E water, ${edge} nm box, $steps steps of 2 fs
		integrator              = md
		dt                      = 0.002
		nsteps                  = $steps
		nstlog                  = $((steps / 10))
		nstenergy               = $((steps / 10))
		nstcalcenergy           = 100
		nstxout-compressed      = 0
		cutoff-scheme           = Verlet
		nstlist                 = 10
		coulombtype             = PME
		rcoulomb                = 1.0
		rvdw                    = 1.0
		DispCorr                = EnerPres
		tcoupl                  = v-rescale
		tc-grps                 = System
		tau-t                   = 0.1
		ref-t                   = 300
		ld-seed                 = 1234
		pcoupl                  = no
		gen-vel                 = yes
		gen-temp                = 300
		gen-seed                = 4321
		constraints             = h-bonds
	EOF
	as_buser_write "$dir/water.top" <<-'EOF'
		#include "oplsaa.ff/forcefield.itp"
		#include "oplsaa.ff/spce.itp"

		[ system ]
		SPC/E water

		[ molecules ]
	EOF
	# (in the image: solvate, count the waters into the topology, grompp)
	as_buser "$FERRY" exec --pwd "$dir" "$IMAGE_SIF" sh -c "export $APP_ENV
		gmx -quiet solvate -cs spc216.gro -box $edge $edge $edge -o water.gro >solvate.log 2>&1 &&
		echo \"SOL \$(grep -c OW water.gro)\" >>water.top &&
		gmx -quiet grompp -f md.mdp -c water.gro -p water.top -o md.tpr >grompp.log 2>&1" ||
		{
			say "gromacs: preparing $dir failed: $(tail -n 5 "$dir/grompp.log" "$dir/solvate.log" 2>/dev/null)"
			return 1
		}
}

vina_prepare() {
	local exh=$1 dir=$2
	[[ $exh =~ ^[1-9][0-9]*$ ]] || die "vina: SIZE is the exhaustiveness (a number), not '$exh'"
	# the receptor: atoms of the AutoDock types C, A (aromatic C), N, NA, OA spread evenly
	# (a Fibonacci lattice) on a sphere of radius 8 Å around the origin, open at the top
	awk 'BEGIN {
		n = 400; R = 8.0; pi = 3.141592653589793; ga = pi * (3 - sqrt(5)); k = 0
		split("C C A OA N C NA C A OA", types, " ")
		for (i = 0; i < n; i++) {
			z = 1 - 2 * (i + 0.5) / n; r = sqrt(1 - z * z); t = ga * i
			if (R * z > 5.5) continue
			k++; ty = types[i % 10 + 1]; el = (ty == "A") ? "C" : substr(ty, 1, 1)
			printf "ATOM  %5d  %-3s REC A%4d    %8.3f%8.3f%8.3f  1.00  0.00    %6.3f %-2s\n",
				k, el, 1 + int(k / 8), R * r * cos(t), R * r * sin(t), R * z, 0, ty
		} }' | as_buser_write "$dir/receptor.pdbqt"
	# the ligand: 3-phenylpropanol-like, the ring rigid, two rotatable bonds
	as_buser_write "$dir/ligand.pdbqt" <<-'EOF'
		ROOT
		ATOM      1  C1  LIG     1       1.390   0.000   0.000  0.00  0.00     0.000 A 
		ATOM      2  C2  LIG     1       0.695   1.204   0.000  0.00  0.00     0.000 A 
		ATOM      3  C3  LIG     1      -0.695   1.204   0.000  0.00  0.00     0.000 A 
		ATOM      4  C4  LIG     1      -1.390   0.000   0.000  0.00  0.00     0.000 A 
		ATOM      5  C5  LIG     1      -0.695  -1.204   0.000  0.00  0.00     0.000 A 
		ATOM      6  C6  LIG     1       0.695  -1.204   0.000  0.00  0.00     0.000 A 
		ENDROOT
		BRANCH   1   7
		ATOM      7  C7  LIG     1       2.900   0.000   0.000  0.00  0.00     0.000 C 
		BRANCH   7   8
		ATOM      8  C8  LIG     1       3.410   1.420   0.000  0.00  0.00     0.000 C 
		ATOM      9  O9  LIG     1       4.850   1.420   0.000  0.00  0.00     0.000 OA
		ENDBRANCH   7   8
		ENDBRANCH   1   7
		TORSDOF 2
	EOF
	as_buser_write "$dir/conf.txt" <<-EOF
		receptor = receptor.pdbqt
		ligand = ligand.pdbqt
		center_x = 0
		center_y = 0
		center_z = 0
		size_x = 24
		size_y = 24
		size_z = 24
		seed = 1
		cpu = 1
		exhaustiveness = $exh
		out = out.pdbqt
	EOF
}

# app_cmd NAME SIZE WORKDIR: the command to run in the container (in WORKDIR), one argument a
# line: the application, its output to files of WORKDIR, then its exit status to WORKDIR/done.
app_cmd() {
	local app=$1 dir=$3 run
	case $app in
	hpl) run="hpcc >hpcc.out 2>&1" ;;
	lammps) run="lmp -nocite -in in.melt -log log.lammps -screen none >lmp.out 2>&1" ;;
	gromacs) run="gmx -quiet mdrun -s md.tpr -deffnm md -nt 1 -reprod -pin off -nb cpu >mdrun.out 2>&1" ;;
	vina) run="date +%s.%N >vina.start; vina --config conf.txt >vina.out 2>&1; rc=\$?; date +%s.%N >vina.end; (exit \$rc)" ;;
	*) die "unknown application '$app'" ;;
	esac
	printf '%s\n' sh -c "cd '$dir' || exit; export $APP_ENV OMPI_MCA_orte_tmpdir_base='$dir'; $run; echo \$? >done.tmp; mv done.tmp done"
}

# app_proc NAME: the process name of NAME in the container.
app_proc() {
	case $1 in
	hpl) echo hpcc ;;
	lammps) echo lmp ;;
	gromacs) echo gmx ;;
	vina) echo vina ;;
	esac
}

# app_pid NAME WORKDIR: the pid (host's view) of NAME running in WORKDIR ('' when none).
app_pid() {
	local p
	for p in $(pgrep -x "$(app_proc "$1")"); do
		if [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$2" ]; then
			echo "$p"
			return 0
		fi
	done
}

# app_rss NAME WORKDIR: the resident memory of NAME running in WORKDIR, in bytes (0: not running).
app_rss() {
	local p
	p=$(app_pid "$1" "$2")
	[ -n "$p" ] || {
		echo 0
		return 1
	}
	awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$p/status" 2>/dev/null || echo 0
}

# app_peaked NAME WORKDIR: NAME is at its peak memory (see app_peak_wait).
app_peaked() {
	local app=$1 dir=$2 n rss
	case $app in
	hpl)
		# the HPL section has begun and the matrix (N*N*8 bytes) is resident: HPL factors it
		grep -q '^Begin of HPL section' "$dir/hpccoutf.txt" 2>/dev/null || return 1
		n=$(awk 'NR == 6 { print $1 }' "$dir/hpccinf.txt")
		rss=$(app_rss "$app" "$dir") || return 1
		[ "$rss" -ge $((n * n * 8 * 9 / 10)) ]
		;;
	lammps)
		# the first thermo line of the run (step 0: atoms, neighbour lists allocated)
		awk '/^ *Step /{ h = 1; next } h && $1 ~ /^[0-9]+$/ { f = 1; exit } END { exit !f }' \
			"$dir/log.lammps" 2>/dev/null
		;;
	gromacs)
		# the first energies of the run (step 0)
		grep -q '^ *Step *Time' "$dir/md.log" 2>/dev/null
		;;
	vina)
		# the grids are computed, the Monte Carlo searches have begun
		grep -q '^Performing docking' "$dir/vina.out" 2>/dev/null
		;;
	*) die "unknown application '$app'" ;;
	esac
}

# app_peak_wait NAME WORKDIR TIMEOUT: returns 0 once NAME is at its peak memory, in its main
# loop: the moment to migrate. 1 on timeout, 2 when it has finished already. (An application
# that ends while it is being dumped fails the migration — "the dumping process died" — and
# stays on the source: every size here leaves at least a second of its main loop.)
app_peak_wait() {
	local app=$1 dir=$2 t=$3 i
	for ((i = 0; i < t * 10; i++)); do
		app_done "$app" "$dir" && return 2
		app_peaked "$app" "$dir" && return 0
		sleep 0.1
	done
	return 1
}

# app_done NAME WORKDIR: NAME has finished (successfully or not).
app_done() { [ -e "$2/done" ]; }

# app_result NAME WORKDIR: what must be identical between a plain and a migrated run; fails
# (printing nothing) when the application did not end well.
app_result() {
	local app=$1 dir=$2 out
	[ "$(cat "$dir/done" 2>/dev/null)" = 0 ] || return 1
	case $app in
	hpl)
		out=$(awk '/^\|\|Ax-b\|\|/ { r = $0 } END { print r }' "$dir/hpccoutf.txt"
			grep -E '^HPL_(N|NB|RnormI|Anorm1|AnormI|Xnorm1|XnormI)=' "$dir/hpccoutf.txt")
		grep -q PASSED <<<"$out" || return 1
		;;
	lammps)
		out=$(awk '/^Loop time of/ { print prev; exit } { prev = $0 }' "$dir/log.lammps" | tr -s ' ')
		;;
	gromacs)
		[ -s "$dir/md.edr" ] && [ -s "$dir/md.gro" ] || return 1
		# the last energies block (less the "Writing checkpoint ... at DATE" line)
		out=$(awk '/^ *Step *Time/ { b = ""; on = 1 } /<====/ { on = 0 }
			on && !/Writing checkpoint/ && NF { b = b $0 "\n" } END { printf "%s", b }' "$dir/md.log" | tr -s ' ')
		out+=$'\n'"md.edr $(sha256sum <"$dir/md.edr" | cut -c1-64)"
		out+=$'\n'"md.gro $(sha256sum <"$dir/md.gro" | cut -c1-64)"
		;;
	vina)
		[ -s "$dir/out.pdbqt" ] || return 1
		out=$(grep '^REMARK VINA RESULT' "$dir/out.pdbqt" | tr -s ' ')
		out+=$'\n'"out.pdbqt $(sha256sum <"$dir/out.pdbqt" | cut -c1-64)"
		;;
	*) die "unknown application '$app'" ;;
	esac
	[ -n "$out" ] || return 1
	printf '%s\n' "$out"
}

# app_runtime NAME WORKDIR: the run time NAME reports itself, in seconds.
app_runtime() {
	case $1 in
	hpl) awk '$1 ~ /^W[RC][0-9]/ && NF >= 7 { print $6; exit }' "$2/hpccoutf.txt" 2>/dev/null ;;
	lammps) awk '/^Loop time of/ { print $4; exit }' "$2/log.lammps" 2>/dev/null ;;
	gromacs) awk '$1 == "Time:" { print $3; exit }' "$2/md.log" 2>/dev/null ;;
	vina) cat "$2/vina.start" "$2/vina.end" 2>/dev/null | awk 'NR == 1 { s = $1 } NR == 2 { printf "%.2f\n", $1 - s }' ;;
	esac
}
