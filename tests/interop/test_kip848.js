'use strict'
// KIP-848 consumer groups with real clients: kafka-crab-js (librdkafka 2.12,
// group.protocol=consumer) members, each its own process (kip848_member.js), @platformatic/kafka
// (groupProtocol 'consumer') in one group with them, a kafkajs
// producer, and confluent-kafka (Python, classic protocol) beside them.
//  - three members on a 6-partition topic get 2/2/2; one leaves and the others take its
//    partitions while the partitions they kept never pause (longest pause asserted), then a
//    member joins the same way;
//  - a SIGKILLed member's partitions move after group.consumer.session.timeout.ms, not before;
//  - offsets commit (OffsetCommit v9 with member epochs) and a new member resumes after them;
//  - a regex subscription picks up a topic created later;
//  - a classic consumer group and a consumer-protocol group read the same topic side by side;
//  - the group survives a broker SIGKILL and restart: same member ids, epochs, assignments.
// Bad input over the raw protocol is in test_kip848_raw.py.
const { spawn } = require('child_process')
const { SLOW, check, comment, runTests, sleep, test, withBroker } = require('./harness.js')
const { spawnMember, waitFor, kafkaClient, createTopic, steadyProducer, measurePauses, balanced } =
  require('./kip848_lib.js')

const PROPS = {
  'num.partitions': 6,
  'offsets.topic.num.partitions': 10,
  'group.initial.rebalance.delay.ms': 0,
  'group.min.session.timeout.ms': 1000,
  'group.consumer.heartbeat.interval.ms': 500,
  'group.consumer.min.heartbeat.interval.ms': 100,
  'group.consumer.session.timeout.ms': 3000,
  'group.consumer.min.session.timeout.ms': 1000
}

// Bound for the longest pause on a partition that keeps its owner: the steady producer writes
// every 20 ms, so anything near a heartbeat interval or more means the member stopped.
const MAX_PAUSE_MS = 1500

test('three_members_split_then_leave_and_join_without_pausing_others', async () => {
  await withBroker(PROPS, async b => {
    const r = await measurePauses(b, 'consumer', 'kip848-pause', 'kip-pause')
    comment(`consumer protocol: split ${r.split.join('/')}; leave: longest pause ${r.leave.pauseMs} ms on ${r.leave.untouched} untouched partitions (settled in ${r.leave.settleMs} ms); join: ${r.join.pauseMs} ms on ${r.join.untouched} (settled in ${r.join.settleMs} ms)`)
    check(r.split.join('/') === '2/2/2', `split ${r.split}`)
    check(r.leave.untouched === 4, `the two staying members kept their 4 partitions (untouched ${r.leave.untouched})`)
    check(r.join.untouched >= 4, `a join moves at most 2 partitions (untouched ${r.join.untouched})`)
    check(r.leave.pauseMs < MAX_PAUSE_MS, `leave paused untouched partitions for ${r.leave.pauseMs} ms`)
    check(r.join.pauseMs < MAX_PAUSE_MS, `join paused untouched partitions for ${r.join.pauseMs} ms`)
  })
})

test('sigkilled_member_partitions_move_after_session_timeout', async () => {
  await withBroker(PROPS, async b => {
    const kafka = kafkaClient(b)
    await createTopic(kafka, 'kip-kill', 6)
    const prod = await steadyProducer(kafka, 'kip-kill', 6, 50)
    const a = spawnMember(b.bootstrap, 'kip848-kill', 'kip-kill', 'consumer')
    const v = spawnMember(b.bootstrap, 'kip848-kill', 'kip-kill', 'consumer')
    try {
      await waitFor(() => balanced([a, v], 6), 60000, '3/3')
      const t0 = Date.now()
      await v.kill()
      await waitFor(() => a.assign.length === 6, 20000, 'the survivor to own all 6')
      const took = Date.now() - t0
      comment(`partitions moved ${took} ms after SIGKILL (session timeout 3000 ms)`)
      check(took >= 2500, `moved after ${took} ms: before the session timeout`)
      const since = Date.now()
      await waitFor(() => new Set(a.msgs.filter(x => x.t >= since).map(x => x.p)).size === 6, 20000,
        'messages from all 6 partitions at the survivor')
    } finally {
      await a.stop()
      await v.kill()
      await prod.stop()
    }
  })
})

// `gregor group describe GROUP`: the header line and {member id: epoch} from the member lines.
function cliDescribe (b, group) {
  const bin = process.env.GREGOR_BIN || require('path').join(__dirname, '..', '..', 'build', 'gregor')
  const out = require('child_process').execFileSync(bin, ['group', 'describe', group, '-b', b.bootstrap], { encoding: 'utf8', timeout: 60000 * SLOW })
  const lines = out.split('\n')
  const members = {}
  for (const ln of lines) {
    const m = /^ {2}Member (\S+) .* epoch=(-?\d+) /.exec(ln)
    if (m) members[m[1]] = Number(m[2])
  }
  return { header: lines[0], members }
}

// The broker is SIGKILLed and restarted with two librdkafka members in a consumer group: the
// group comes back from __consumer_offsets, the members heartbeat on with their member ids and
// epochs, their assignments never change (no rebalance, no new group epoch) and they consume
// what is produced after the restart on the partitions they kept.
test('group_survives_a_broker_sigkill_and_restart', async () => {
  await withBroker(PROPS, async b => {
    let kafka = kafkaClient(b)
    await createTopic(kafka, 'kip-restart', 6)
    const ms = [spawnMember(b.bootstrap, 'kip848-restart', 'kip-restart', 'consumer'),
      spawnMember(b.bootstrap, 'kip848-restart', 'kip-restart', 'consumer')]
    let prod = null
    try {
      await waitFor(() => balanced(ms, 6), 60000, '3/3')
      await sleep(1500) // a few heartbeats: the members report their epochs settled
      const before = cliDescribe(b, 'kip848-restart')
      const assigns = ms.map(m => m.assign.join(','))
      const changes = ms.map(m => m.assignChanges)
      comment(`before: ${before.header} ${JSON.stringify(before.members)}`)
      check(Object.keys(before.members).length === 2, `two members: ${JSON.stringify(before.members)}`)
      const exited = b.exited
      b.hardKill()
      await exited // the port is free again
      await b.start()
      const restartAt = Date.now()
      kafka = kafkaClient(b)
      prod = await steadyProducer(kafka, 'kip-restart', 6, 50)
      await waitFor(() => ms.every(m => new Set(m.msgs.filter(x => x.t >= restartAt).map(x => x.p)).size === 3),
        30000, 'both members consuming their 3 partitions after the restart')
      await sleep(2000) // several heartbeat intervals (500 ms) after the restart
      const after = cliDescribe(b, 'kip848-restart')
      comment(`after:  ${after.header} ${JSON.stringify(after.members)}`)
      check(JSON.stringify(after.members) === JSON.stringify(before.members),
        `same member ids and epochs: ${JSON.stringify(before.members)} -> ${JSON.stringify(after.members)}`)
      const epochOf = h => (/group epoch (\d+)/.exec(h) || [])[1]
      check(epochOf(after.header) === epochOf(before.header), `group epoch ${epochOf(before.header)} -> ${epochOf(after.header)}`)
      ms.forEach((m, i) => check(m.assign.join(',') === assigns[i] && m.assignChanges === changes[i],
        `member ${i}: assignment ${assigns[i]} -> ${m.assign.join(',')} (${m.assignChanges - changes[i]} changes)`))
      const log = require('fs').readFileSync(b.logPath, 'utf8')
      check(!/new target assignment|member \S+ (left|expired)/.test(log), 'no rebalance after the restart')
      check(/loaded 1 groups/.test(log), 'the group was loaded')
    } finally {
      for (const m of ms) await m.stop()
      if (prod) await prod.stop()
    }
  })
})

test('offsets_commit_and_resume', async () => {
  await withBroker(PROPS, async b => {
    const kafka = kafkaClient(b)
    await createTopic(kafka, 'kip-res', 6)
    const producer = kafka.producer()
    await producer.connect()
    const send = async (from, to) => {
      const messages = []
      for (let i = from; i < to; i++) messages.push({ partition: i % 6, value: `m${i}` })
      await producer.send({ topic: 'kip-res', messages })
    }
    try {
      await send(0, 60)
      const m1 = spawnMember(b.bootstrap, 'kip848-res', 'kip-res', 'consumer')
      await waitFor(() => m1.msgs.length >= 60, 60000, 'the first member to read 60')
      await sleep(500)
      await m1.stop() // committed each message (OffsetCommit v9), then leaves
      check(m1.msgs.length === 60, `first member read ${m1.msgs.length}`)
      await send(60, 90)
      const m2 = spawnMember(b.bootstrap, 'kip848-res', 'kip-res', 'consumer')
      await waitFor(() => m2.msgs.length >= 30, 60000, 'the second member to read 30')
      await sleep(1000)
      await m2.stop()
      const firstEnd = new Map()
      for (const x of m1.msgs) firstEnd.set(x.p, Math.max(firstEnd.get(x.p) ?? -1, x.off))
      check(m2.msgs.length === 30, `second member read ${m2.msgs.length}, want the 30 new ones`)
      for (const x of m2.msgs) check(x.off > firstEnd.get(x.p), `re-read p${x.p} offset ${x.off}`)
    } finally {
      await producer.disconnect()
    }
  })
})

test('regex_subscription_picks_up_a_later_topic', async () => {
  await withBroker(PROPS, async b => {
    const kafka = kafkaClient(b)
    await createTopic(kafka, 'rx-first', 2)
    const prodA = await steadyProducer(kafka, 'rx-first', 2, 100)
    const m = spawnMember(b.bootstrap, 'kip848-rx', '^rx-.*', 'consumer')
    let prodB = null
    try {
      await waitFor(() => m.msgs.some(x => x.topic === 'rx-first'), 60000, 'messages of rx-first')
      await createTopic(kafka, 'rx-later', 3)
      prodB = await steadyProducer(kafka, 'rx-later', 3, 100)
      const t0 = Date.now()
      await waitFor(() => new Set(m.msgs.filter(x => x.topic === 'rx-later').map(x => x.p)).size === 3,
        30000, 'messages of all 3 partitions of rx-later')
      comment(`rx-later consumed ${Date.now() - t0} ms after it was created; assignment ${m.assign}`)
      check(!m.msgs.some(x => x.topic.startsWith('__')), 'an internal topic matched')
    } finally {
      await m.stop()
      await prodA.stop()
      if (prodB) await prodB.stop()
    }
  })
})

// A confluent-kafka (librdkafka 2.0.2, classic protocol) consumer reading `n` messages.
function classicConsumer (bootstrap, group, topic, n) {
  const script = `
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
c.subscribe([sys.argv[3]])
got, deadline = 0, time.time() + 60
while got < int(sys.argv[4]) and time.time() < deadline:
    m = c.poll(0.5)
    if m is not None and m.error() is None:
        got += 1
c.close()
print(got)
`
  const proc = spawn('/usr/bin/python3', ['-c', script, bootstrap, group, topic, String(n)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', d => { out += d })
  return new Promise(resolve => proc.on('exit', () => resolve(parseInt(out.trim(), 10))))
}

test('classic_and_consumer_groups_share_a_topic', async () => {
  await withBroker(PROPS, async b => {
    const kafka = kafkaClient(b)
    await createTopic(kafka, 'kip-mixed', 6)
    const producer = kafka.producer()
    await producer.connect()
    const messages = []
    for (let i = 0; i < 120; i++) messages.push({ partition: i % 6, value: `m${i}` })
    await producer.send({ topic: 'kip-mixed', messages })
    await producer.disconnect()
    const classic = classicConsumer(b.bootstrap, 'kip848-classic', 'kip-mixed', 120)
    const ms = [spawnMember(b.bootstrap, 'kip848-new', 'kip-mixed', 'consumer'),
      spawnMember(b.bootstrap, 'kip848-new', 'kip-mixed', 'consumer')]
    try {
      await waitFor(() => ms[0].msgs.length + ms[1].msgs.length >= 120, 60000, 'the consumer group to read 120')
      const got = await classic
      check(got === 120, `the classic consumer read ${got}`)
      await waitFor(() => balanced(ms, 6), 30000, '3/3 in the consumer group')
      const all = ms[0].msgs.concat(ms[1].msgs).map(x => `${x.p}:${x.off}`)
      check(new Set(all).size === 120, `consumer group: ${all.length} messages, ${new Set(all).size} distinct`)
    } finally {
      for (const m of ms) await m.stop()
    }
  })
})

// @platformatic/kafka (its own KIP-848 client in JavaScript) and a kafka-crab-js member in one
// group: 3/3, and together they read every message once.
test('platformatic_and_librdkafka_members_share_a_group', async () => {
  await withBroker(PROPS, async b => {
    const kafka = kafkaClient(b)
    await createTopic(kafka, 'kip-plat', 6)
    const producer = kafka.producer()
    await producer.connect()
    const messages = []
    for (let i = 0; i < 120; i++) messages.push({ partition: i % 6, value: `m${i}` })
    await producer.send({ topic: 'kip-plat', messages })
    await producer.disconnect()
    const { Consumer } = await import(require('path').join(__dirname, '..', '..', 'node_modules', '@platformatic', 'kafka', 'dist', 'index.js'))
    const pc = new Consumer({ groupId: 'kip848-plat', clientId: 'plat', bootstrapBrokers: [b.bootstrap], groupProtocol: 'consumer' })
    const seen = []
    const stream = await pc.consume({ topics: ['kip-plat'], mode: 'earliest', autocommit: 100 })
    stream.on('data', m => seen.push(`${m.partition}:${m.offset}`))
    const m = spawnMember(b.bootstrap, 'kip848-plat', 'kip-plat', 'consumer')
    try {
      const platParts = () => (pc.assignments || []).reduce((n, a) => n + a.partitions.length, 0)
      await waitFor(() => m.assign.length === 3 && platParts() === 3, 60000, '3/3 between the two clients')
      // After the split, 60 more: each client reads exactly the ones of its own partitions.
      const seenBefore = seen.length
      const crabBefore = m.msgs.length
      const p2 = kafka.producer()
      await p2.connect()
      const more = []
      for (let i = 0; i < 60; i++) more.push({ partition: i % 6, value: `n${i}` })
      await p2.send({ topic: 'kip-plat', messages: more })
      await p2.disconnect()
      await waitFor(() => m.msgs.length - crabBefore >= 30 && seen.length - seenBefore >= 30, 60000, 'the 60 new messages')
      await sleep(500)
      const platNew = seen.slice(seenBefore).map(x => Number(x.split(':')[0]))
      const crabNew = m.msgs.slice(crabBefore).map(x => x.p)
      comment(`after the split: platformatic read ${platNew.length} (partitions ${[...new Set(platNew)]}), kafka-crab-js ${crabNew.length} (partitions ${[...new Set(crabNew)]}); platformatic owns ${JSON.stringify(pc.assignments)}, kafka-crab-js ${m.assign}`)
      const mine = new Set((pc.assignments || []).flatMap(a => a.partitions))
      for (const tp of m.assign) check(!mine.has(Number(tp.split(':')[1])), `partition ${tp} owned by both`)
      check(crabNew.length === 30 && crabNew.every(p => !mine.has(p)), `kafka-crab-js read ${crabNew.length} new messages of its own 3 partitions`)
      check(platNew.filter(p => mine.has(p)).length === 30, 'platformatic read the 30 new messages of its own partitions')
      // @platformatic/kafka 1.35 keeps fetching the partitions it gave up (its stream is not
      // narrowed on revocation; the broker does not tie fetches to membership, like Kafka).
      if (platNew.length > 30) comment(`platformatic also read ${platNew.length - 30} messages of partitions it no longer owns (client behaviour)`)
    } finally {
      await stream.close()
      await pc.close()
      await m.stop()
    }
  })
})

runTests()
