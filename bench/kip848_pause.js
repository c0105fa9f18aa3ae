'use strict'
// The longest consumption pause on untouched partitions when a member leaves and when one
// joins, for the KIP-848 consumer protocol and the classic protocol (eager "range" and
// "cooperative-sticky"), in one run against one gregor. Three kafka-crab-js (librdkafka 2.12)
// members, each its own process, read a 6-partition topic that a kafkajs producer writes to
// every 20 ms per partition; "untouched" partitions are those whose owner is the same before and
// after the change. "baseline" is the longest gap in the 1.5 s before the change.
// Usage: GREGOR_BIN=build/gregor node bench/kip848_pause.js [rounds]
const path = require('path')
const { withBroker } = require(path.join(__dirname, '..', 'tests', 'interop', 'harness.js'))
const { measurePauses } = require(path.join(__dirname, '..', 'tests', 'interop', 'kip848_lib.js'))

const PROPS = {
  'num.partitions': 6,
  'group.initial.rebalance.delay.ms': 0,
  'group.min.session.timeout.ms': 1000,
  'group.consumer.heartbeat.interval.ms': 500,
  'group.consumer.min.heartbeat.interval.ms': 100,
  'group.consumer.session.timeout.ms': 6000,
  'group.consumer.min.session.timeout.ms': 1000
}

async function main () {
  const rounds = parseInt(process.argv[2] || '1', 10)
  await withBroker(PROPS, async b => {
    for (let r = 0; r < rounds; r++) {
      for (const proto of ['consumer', 'classic', 'cooperative']) {
        const res = await measurePauses(b, proto, `bench-${proto}-${r}`, `bench-${proto}-${r}`)
        const name = { consumer: 'consumer (KIP-848)', classic: 'classic eager (range)', cooperative: 'classic cooperative-sticky' }[proto]
        console.log(`${name.padEnd(28)} leave: pause ${String(res.leave.pauseMs).padStart(5)} ms (baseline ${res.leave.baselineMs}, settled ${res.leave.settleMs} ms)   join: pause ${String(res.join.pauseMs).padStart(5)} ms (baseline ${res.join.baselineMs}, settled ${res.join.settleMs} ms)`)
      }
    }
  })
  process.exit(0)
}
main().catch(e => { console.error(e); process.exit(1) })
