#!/bin/sh
# Entrypoint of a broker node: prepares root's key and the host key, then becomes sshd (PID 1).
set -eu

# A fresh host key at first start, so every node has its own (broker pins it per cluster).
# Only ed25519: generating RSA at every start costs a second and broker needs one key type.
if [ ! -s /etc/ssh/ssh_host_ed25519_key ]; then
    ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
fi

mkdir -p /run/sshd
chmod 0755 /run/sshd

umask 077
mkdir -p /root/.ssh
chmod 0700 /root/.ssh
if [ -n "${BROKER_AUTHORIZED_KEY:-}" ]; then
    printf '%s\n' "$BROKER_AUTHORIZED_KEY" >/root/.ssh/authorized_keys
fi
if [ -e /root/.ssh/authorized_keys ]; then
    chmod 0600 /root/.ssh/authorized_keys
fi
# The key has been written; sshd and every session it starts should not carry it around.
unset BROKER_AUTHORIZED_KEY

exec /usr/sbin/sshd -D -e -f /etc/broker/sshd_config
