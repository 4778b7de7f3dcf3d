# SPDX-License-Identifier: LGPL-2.1-or-later
"""Socket workloads that need a host setting around them. Ping sockets
(zdtm/sk_raw.c) may only be made by a group in net.ipv4.ping_group_range,
the restorer's too, and Debian's default range is empty: the test opens
it to group 0 and puts the old value back, pass or fail."""
from runner import Test
from t_zdtm import t_zdtm

RANGE = '/proc/sys/net/ipv4/ping_group_range'


def t_ping_range(ctx, binary):
    with open(RANGE) as f:
        old = f.read()
    try:
        with open(RANGE, 'w') as f:
            f.write('0 0')
        t_zdtm(ctx, 'sk_raw', (), None, 1, binary)
    finally:
        with open(RANGE, 'w') as f:
            f.write(old)


def tests(r):
    out = [Test('zdtm:sk_raw', t_ping_range, 60, None)]
    if r.asan_stasis:
        out.append(Test('asan:zdtm:sk_raw', t_ping_range, 120, r.asan_stasis))
    return out
