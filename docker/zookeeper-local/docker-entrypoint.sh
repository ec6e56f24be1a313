#!/bin/bash
# Entrypoint of zkcoord/zookeeper-local (ZooKeeper from Debian packages).
#
# Reads the same environment variables as the official `zookeeper` image's
# entrypoint and behaves the same way where it matters, so one compose file
# serves both images:
#   - zoo.cfg is written to $ZOO_CONF_DIR/zoo.cfg only if it does not exist yet
#     (a restarted container keeps its config), from ZOO_DATA_DIR,
#     ZOO_DATA_LOG_DIR, ZOO_TICK_TIME, ZOO_INIT_LIMIT, ZOO_SYNC_LIMIT,
#     ZOO_AUTOPURGE_SNAPRETAINCOUNT, ZOO_AUTOPURGE_PURGEINTERVAL,
#     ZOO_MAX_CLIENT_CNXNS, ZOO_STANDALONE_ENABLED, ZOO_ADMINSERVER_ENABLED,
#     ZOO_SERVERS (space separated "server.N=host:2888:3888;2181" entries,
#     default "server.1=localhost:2888:3888;2181"), ZOO_4LW_COMMANDS_WHITELIST
#     and ZOO_CFG_EXTRA (space separated key=value lines, appended last);
#   - $ZOO_DATA_DIR/myid is written from ZOO_MY_ID (default 1) only if missing;
#   - started as root with the default command, it chowns the data and log
#     directories and drops to user zookeeper (setpriv instead of gosu);
#   - the server runs in the foreground as PID 1 (exec java), logging to the
#     console, so `docker stop` (SIGTERM) and `docker kill` act on the JVM itself;
#   - any other command is exec'd as is (`docker run IMAGE zkCli.sh ...`).
# Differences: the Debian package is ZooKeeper 3.8.0 with log4j 1.2, so
# ZOO_LOG_LEVEL (default INFO) and ZOO_LOG_APPENDER (CONSOLE or ROLLINGFILE,
# default CONSOLE) map onto Debian's /etc/zookeeper/conf/log4j.properties.
# When our own server.N entry has no ";clientport" part, clientPort=${ZOO_PORT:-2181}
# is written too (the official image relies on the server line alone).
# JVM options: ZK_SERVER_HEAP (MB, default 1000), SERVER_JVMFLAGS, JVMFLAGS.
set -e

: "${ZOO_CONF_DIR:=/conf}" "${ZOO_DATA_DIR:=/data}" "${ZOO_DATA_LOG_DIR:=/datalog}" "${ZOO_LOG_DIR:=/logs}"
: "${ZOO_TICK_TIME:=2000}" "${ZOO_INIT_LIMIT:=5}" "${ZOO_SYNC_LIMIT:=2}"
: "${ZOO_AUTOPURGE_PURGEINTERVAL:=0}" "${ZOO_AUTOPURGE_SNAPRETAINCOUNT:=3}"
: "${ZOO_MAX_CLIENT_CNXNS:=60}" "${ZOO_STANDALONE_ENABLED:=true}" "${ZOO_ADMINSERVER_ENABLED:=true}"

# No command, or the official image's default command: run the server.
if [[ $# -eq 0 || ( "$1" == zkServer.sh && "${2:-start-foreground}" == start-foreground ) ]]; then
    :
else
    exec "$@"
fi

# Allow the container to be started with `--user`; as root, drop privileges.
if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "$ZOO_CONF_DIR" "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"
    chown -R zookeeper: "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"
    chown zookeeper: "$ZOO_CONF_DIR"
    if command -v setpriv >/dev/null; then
        exec setpriv --reuid=zookeeper --regid=zookeeper --init-groups "$0" "$@"
    fi
    echo "docker-entrypoint.sh: setpriv not found, running ZooKeeper as root" >&2
fi

CONFIG="$ZOO_CONF_DIR/zoo.cfg"
if [[ ! -f "$CONFIG" ]]; then
    if [[ -z $ZOO_SERVERS ]]; then
        ZOO_SERVERS="server.1=localhost:2888:3888;2181"
    fi
    {
        echo "dataDir=$ZOO_DATA_DIR"
        echo "dataLogDir=$ZOO_DATA_LOG_DIR"

        echo "tickTime=$ZOO_TICK_TIME"
        echo "initLimit=$ZOO_INIT_LIMIT"
        echo "syncLimit=$ZOO_SYNC_LIMIT"

        echo "autopurge.snapRetainCount=$ZOO_AUTOPURGE_SNAPRETAINCOUNT"
        echo "autopurge.purgeInterval=$ZOO_AUTOPURGE_PURGEINTERVAL"
        echo "maxClientCnxns=$ZOO_MAX_CLIENT_CNXNS"
        echo "standaloneEnabled=$ZOO_STANDALONE_ENABLED"
        echo "admin.enableServer=$ZOO_ADMINSERVER_ENABLED"

        own_has_client_port=0
        for server in $ZOO_SERVERS; do
            if [[ $server == "server.${ZOO_MY_ID:-1}="*";"* ]]; then own_has_client_port=1; fi
        done
        if [[ $own_has_client_port == 0 ]]; then
            echo "clientPort=${ZOO_PORT:-2181}"
        fi

        for server in $ZOO_SERVERS; do
            echo "$server"
        done

        if [[ -n $ZOO_4LW_COMMANDS_WHITELIST ]]; then
            echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST"
        fi

        for cfg_extra_entry in $ZOO_CFG_EXTRA; do
            echo "$cfg_extra_entry"
        done
    } > "$CONFIG.tmp"
    mv "$CONFIG.tmp" "$CONFIG"
fi

if [[ ! -f "$ZOO_DATA_DIR/myid" ]]; then
    echo "${ZOO_MY_ID:-1}" > "$ZOO_DATA_DIR/myid"
fi

case ${ZOO_LOG_APPENDER:-CONSOLE} in
    CONSOLE|ROLLINGFILE) appender=${ZOO_LOG_APPENDER:-CONSOLE} ;;
    *) echo "docker-entrypoint.sh: ZOO_LOG_APPENDER must be CONSOLE or ROLLINGFILE" >&2; exit 2 ;;
esac

# Debian's zookeeper.jar lists its dependencies in its manifest, but no SLF4J
# binding: add log4j 1.2 and its binding, or the server logs nothing.
# $ZOO_CONF_DIR comes first so a log4j.properties mounted there wins.
classpath="$ZOO_CONF_DIR:/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
classpath="$classpath:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

# shellcheck disable=SC2086 # JVM flag variables are word-split on purpose.
exec java \
    "-Dzookeeper.log.dir=$ZOO_LOG_DIR" \
    "-Dzookeeper.log.file=zookeeper.log" \
    "-Dzookeeper.root.logger=${ZOO_LOG_LEVEL:-INFO},$appender" \
    "-Xmx${ZK_SERVER_HEAP:-1000}m" \
    -XX:+ExitOnOutOfMemoryError \
    $SERVER_JVMFLAGS $JVMFLAGS \
    -cp "$classpath" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$CONFIG"
