'use strict'
// Shared by test_kip848.js and bench/kip848_pause.js: consumer-group members as child processes
// (kip848_member.js, kafka-crab-js = librdkafka 2.12), a steady kafkajs producer, and the
// "longest consumption pause on untouched partitions" measurement around a member leaving and
// a member joining.
const { spawn } = require('child_process')
const path = require('path')
const readline = require('readline')
const { SLOW, check, kafkajs, sleep } = require('./harness.js')

const MEMBER = path.join(__dirname, 'kip848_member.js')
const children = new Set()
process.on('exit', () => { for (const c of children) try { c.kill('SIGKILL') } catch (e) {} })

// A member process. m.assign: its current partitions ("topic:p"); m.msgs: {t, topic, p, off}.
function spawnMember (bootstrap, group, topics, protocol, opts = {}) {
  const args = [MEMBER, bootstrap, group, topics, protocol, opts.instance || '-', opts.autoCommit ? '1' : '0']
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(proc)
  const m = { proc, assign: [], assignChanges: 0, msgs: [], errors: [], ready: false, exited: false, stderr: '' }
  const trace = process.env.KIP848_TRACE_DIR ? require('fs').createWriteStream(path.join(process.env.KIP848_TRACE_DIR, `member-${proc.pid}.log`)) : null
  readline.createInterface({ input: proc.stdout }).on('line', line => {
    if (trace) trace.write(line + '\n')
    let ev
    try { ev = JSON.parse(line) } catch (e) { return }
    if (ev.ev === 'msg') m.msgs.push(ev)
    else if (ev.ev === 'assign') { m.assign = ev.parts; m.assignChanges++ }
    else if (ev.ev === 'ready') m.ready = true
    else if (ev.ev === 'error') m.errors.push(ev.msg)
  })
  proc.stderr.on('data', d => { m.stderr = (m.stderr + d).slice(-4000) })
  m.done = new Promise(resolve => proc.on('exit', () => { m.exited = true; children.delete(proc); resolve() }))
  m.stop = async () => { if (!m.exited) { proc.kill('SIGTERM'); await Promise.race([m.done, sleep(15000)]) } if (!m.exited) proc.kill('SIGKILL') }
  m.kill = async () => { if (!m.exited) proc.kill('SIGKILL'); await m.done }
  return m
}

async function waitFor (pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs * SLOW
  while (!pred()) {
    check(Date.now() < deadline, `timed out after ${timeoutMs * SLOW} ms waiting for ${what}`)
    await sleep(50)
  }
}

function kafkaClient (b) {
  const { Kafka, logLevel } = kafkajs()
  return new Kafka({ clientId: 'kip848', brokers: [b.bootstrap], logLevel: logLevel.NOTHING, requestTimeout: 30000 * SLOW })
}

async function createTopic (kafka, topic, partitions) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true })
  } finally { await admin.disconnect() }
}

// Produces one message to every partition every `everyMs` until stop() is called.
async function steadyProducer (kafka, topic, partitions, everyMs = 20) {
  const producer = kafka.producer()
  await producer.connect()
  let running = true
  let n = 0
  const loop = (async () => {
    while (running) {
      const messages = []
      for (let p = 0; p < partitions; p++) messages.push({ partition: p, value: `v${n++}` })
      try { await producer.send({ topic, messages, acks: 1 }) } catch (e) {}
      await sleep(everyMs)
    }
  })()
  return { stop: async () => { running = false; await loop; await producer.disconnect() }, count: () => n }
}

function owners (members) {
  const o = new Map()
  for (const m of members) for (const tp of m.assign) o.set(tp, m)
  return o
}

// Longest gap between consecutive arrivals on partition `tp` at member m within [from, to],
// counting the gap that spans `from` (from the last arrival before it).
function longestGap (m, tp, from, to) {
  const ts = m.msgs.filter(x => `${x.topic}:${x.p}` === tp && x.t <= to).map(x => x.t)
  let prev = null
  let worst = 0
  for (const t of ts) {
    if (t < from) { prev = t; continue }
    if (prev !== null) worst = Math.max(worst, t - prev)
    prev = t
  }
  if (prev !== null) worst = Math.max(worst, to - prev)
  return worst
}

// Largest pause over the partitions whose owner did not change between before and after, and
// the same over the 1.5 s before the event (the baseline of a steady consumer).
function untouchedPause (before, after, from, to) {
  let worst = 0
  let baseline = 0
  let n = 0
  for (const [tp, m] of before) {
    if (after.get(tp) !== m) continue
    n++
    worst = Math.max(worst, longestGap(m, tp, from, to))
    baseline = Math.max(baseline, longestGap(m, tp, from - 1500, from))
  }
  return { pauseMs: worst, baselineMs: baseline, untouched: n }
}

function balanced (members, total) {
  const o = owners(members)
  return o.size === total && members.every(m => m.assign.length === total / members.length)
}

// Three members on a 6-partition topic under steady load; one leaves (SIGTERM: it leaves the
// group), later a fourth joins. Returns {leave, join} pauses on untouched partitions (ms).
async function measurePauses (b, protocol, group, topic) {
  const kafka = kafkaClient(b)
  await createTopic(kafka, topic, 6)
  const prod = await steadyProducer(kafka, topic, 6)
  const members = []
  try {
    for (let i = 0; i < 3; i++) members.push(spawnMember(b.bootstrap, group, topic, protocol, { autoCommit: true }))
    await waitFor(() => balanced(members, 6), 60000, `${protocol}: 2/2/2 over 3 members`)
    const split = members.map(m => m.assign.length)
    await sleep(1500)
    // Leave.
    const before = owners(members)
    const tLeave = Date.now()
    const leaving = members.pop()
    await leaving.stop()
    await waitFor(() => balanced(members, 6), 60000, `${protocol}: 3/3 after a leave`)
    const settled = Date.now()
    await sleep(1500)
    const leave = untouchedPause(before, owners(members), tLeave, settled + 1000)
    leave.settleMs = settled - tLeave
    // Join.
    const before2 = owners(members)
    const tJoin = Date.now()
    members.push(spawnMember(b.bootstrap, group, topic, protocol, { autoCommit: true }))
    await waitFor(() => balanced(members, 6), 60000, `${protocol}: 2/2/2 after a join`)
    const settled2 = Date.now()
    await sleep(1500)
    const join = untouchedPause(before2, owners(members), tJoin, settled2 + 1000)
    join.settleMs = settled2 - tJoin
    return { split, leave, join }
  } finally {
    for (const m of members) await m.stop()
    await prod.stop()
  }
}

module.exports = { spawnMember, waitFor, kafkaClient, createTopic, steadyProducer, owners, measurePauses, balanced }
