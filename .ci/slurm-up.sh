#!/usr/bin/env bash
# Single-node SLURM (Debian 12: Slurm 22.05 + munge + slurmdbd/MariaDB) for the `slurm`-marked tests, run as root.
# Usage: SLURM_DIR=/tmp/slurm-ci SLURM_ACCOUNTING=1 bash slurm-up.sh ; then: export SLURM_CONF=$SLURM_DIR/slurm.conf
set -euo pipefail
SLURM_DIR=${SLURM_DIR:-/tmp/slurm-ci}
ACCT=${SLURM_ACCOUNTING:-1}          # 1: slurmdbd+MariaDB so `sacct` works (submitit job states); 0: no accounting
NCPU=$(nproc); MEM_MB=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 2048 ))

pkgs="slurmctld slurmd slurm-client munge"; [ "$ACCT" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
missing=""; for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

mkdir -p "$SLURM_DIR"/{state,spool,log,run}
export SLURM_CONF="$SLURM_DIR/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=$([ "$ACCT" = 1 ] && echo jobacct_gather/linux || echo jobacct_gather/none)
AccountingStorageType=$([ "$ACCT" = 1 ] && echo accounting_storage/slurmdbd || echo accounting_storage/none)
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobCompType=jobcomp/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MinJobAge=300
KillWait=5
InactiveLimit=0
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$NCPU Sockets=1 CoresPerSocket=$NCPU ThreadsPerCore=1 RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

# munge (the Debian package creates /etc/munge/munge.key; make one if absent)
[ -f /etc/munge/munge.key ] || runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge; chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n >/dev/null 2>&1; then runuser -u munge -- /usr/sbin/munged; fi   # daemonizes; pid in /run/munge/munged.pid
for i in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done

if [ "$ACCT" = 1 ]; then
  DB="$SLURM_DIR/mysql"; SOCK="$SLURM_DIR/run/mysqld/mysqld.sock"
  mkdir -p "$SLURM_DIR/run/mysqld"; chown mysql:mysql "$SLURM_DIR/run/mysqld"
  if [ ! -d "$DB/mysql" ]; then
    mkdir -p "$DB"; chown mysql:mysql "$DB"
    mariadb-install-db --user=mysql --datadir="$DB" --auth-root-authentication-method=socket >"$SLURM_DIR/log/mariadb-install.log" 2>&1
  fi
  if ! mariadb-admin -S "$SOCK" ping >/dev/null 2>&1; then
    nohup mariadbd --user=mysql --datadir="$DB" --socket="$SOCK" --pid-file="$SLURM_DIR/run/mysqld/mysqld.pid" \
       --bind-address=127.0.0.1 --port=3306 --innodb-buffer-pool-size=64M \
       --log-error="$SLURM_DIR/log/mariadb.err" >/dev/null 2>&1 &
  fi
  for i in $(seq 100); do mariadb-admin -S "$SOCK" ping >/dev/null 2>&1 && break; sleep 0.1; done
  mariadb -S "$SOCK" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  cat > "$SLURM_DIR/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmpw
LogFile=$SLURM_DIR/log/slurmdbd.log
PidFile=$SLURM_DIR/run/slurmdbd.pid
DebugLevel=info
CONF
  chmod 600 "$SLURM_DIR/slurmdbd.conf"      # slurmdbd refuses a conf readable by others
  sacctmgr -n show cluster >/dev/null 2>&1 || /usr/sbin/slurmdbd   # finds slurmdbd.conf beside $SLURM_CONF
  for i in $(seq 100); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.1; done
  sacctmgr -i -Q add cluster ci >/dev/null 2>&1 || true
fi

scontrol ping 2>/dev/null | grep -q UP || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd -N localhost
for i in $(seq 150); do [ "$(sinfo -h -n localhost -o %T 2>/dev/null)" = idle ] && break; sleep 0.2; done
sinfo -h -n localhost -o %T | grep -qx idle || { echo "SLURM node not idle"; tail -20 "$SLURM_DIR"/log/*.log; exit 1; }
timeout 60 srun -n1 true || { echo "srun smoke test failed"; tail -20 "$SLURM_DIR"/log/*.log; exit 1; }
echo "slurm up: export SLURM_CONF=$SLURM_CONF"
