'use strict'
// kafkajs 2.2.4 producer against Gregor, with default settings and with gzip: 1000 keyed
// messages into a 3-partition topic (auto-created by the producer). Checks the send()
// metadata, admin.fetchTopicOffsets(), and reads everything back with kcat (kafkajs has no
// group-less consumer; the kafkajs consumer-group test lives in its own file).
const { spawnSync } = require('child_process')
const { SLOW, check, comment, kafkajs, recordingLogCreator, runTests, test, withBroker } =
  require('./harness.js')

const PARTS = 3

function client (b, logs) {
  const { Kafka, logLevel } = kafkajs()
  return new Kafka({
    clientId: 'gregor-interop',
    brokers: [b.bootstrap],
    connectionTimeout: 10000 * SLOW,
    requestTimeout: 30000 * SLOW,
    logLevel: logLevel.WARN,
    logCreator: recordingLogCreator(logs)
  })
}

function kcatConsume (b, topic) {
  const p = spawnSync('kcat', ['-b', b.bootstrap, '-t', topic, '-C', '-e', '-o', 'beginning', '-q',
    '-f', '%p\t%o\t%k\t%s\n'], { timeout: 120000 * SLOW, maxBuffer: 64 << 20 })
  check(p.status === 0, `kcat -C exit ${p.status}: ${p.stderr}`)
  return p.stdout.toString().split('\n').filter(l => l).map(l => {
    const [p, o, k, v] = l.split('\t')
    return { partition: Number(p), offset: Number(o), key: k, value: v }
  })
}

async function produceAndVerify (b, topic, compression) {
  const logs = []
  const kafka = client(b, logs)
  const producer = kafka.producer()
  await producer.connect()
  const sent = []
  try {
    for (let batch = 0; batch < 10; batch++) {
      const messages = []
      for (let i = 0; i < 100; i++) {
        const n = batch * 100 + i
        messages.push({ key: `key${n % 37}`, value: `${topic}-${n}-${'x'.repeat(n % 50)}` })
      }
      const md = await producer.send({ topic, messages, compression })
      for (const m of md) check(m.errorCode === 0, `send errorCode ${m.errorCode}`)
      sent.push(...messages)
    }
  } finally {
    await producer.disconnect()
  }
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offs = await admin.fetchTopicOffsets(topic)
    comment(`${topic} offsets: ${JSON.stringify(offs)}`)
    check(offs.length === PARTS, `${offs.length} partitions`)
    const total = offs.reduce((s, o) => s + Number(o.high) - Number(o.low), 0)
    check(total === 1000, `high - low summed over partitions = ${total}, want 1000`)
    for (const o of offs) check(Number(o.low) === 0, `partition ${o.partition} low ${o.low}`)
  } finally {
    await admin.disconnect()
  }
  const got = kcatConsume(b, topic)
  check(got.length === 1000, `kcat read ${got.length} messages, want 1000`)
  // Per partition: offsets 0..n-1, and each key's messages in send order in one partition.
  const keyPart = new Map()
  const nextOff = new Map()
  const byKey = new Map()
  for (const m of got) {
    check(m.offset === (nextOff.get(m.partition) || 0), `partition ${m.partition}: offset ${m.offset}`)
    nextOff.set(m.partition, m.offset + 1)
    if (!keyPart.has(m.key)) keyPart.set(m.key, m.partition)
    check(keyPart.get(m.key) === m.partition, `key ${m.key} in two partitions`)
    if (!byKey.has(m.key)) byKey.set(m.key, [])
    byKey.get(m.key).push(m.value)
  }
  const want = new Map()
  for (const m of sent) {
    if (!want.has(m.key)) want.set(m.key, [])
    want.get(m.key).push(m.value)
  }
  for (const [k, vals] of want) {
    check(JSON.stringify(byKey.get(k)) === JSON.stringify(vals), `key ${k}: values differ or out of order`)
  }
  const { logLevel } = kafkajs()
  const errors = logs.filter(l => l.level === logLevel.ERROR)
  check(errors.length === 0, `kafkajs errors: ${JSON.stringify(errors.slice(0, 3))}`)
}

test('kafkajs_produce_default_settings', async () => {
  // Default producer (acks -1, no compression, auto topic creation by the producer).
  await withBroker({ 'num.partitions': PARTS }, b => produceAndVerify(b, 'kjs-default', undefined))
})

test('kafkajs_produce_gzip', async () => {
  await withBroker({ 'num.partitions': PARTS }, b =>
    produceAndVerify(b, 'kjs-gzip', kafkajs().CompressionTypes.GZIP))
})

runTests()
