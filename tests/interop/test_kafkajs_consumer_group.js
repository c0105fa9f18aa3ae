'use strict'
// PENDING until the group coordinator lands (FindCoordinator/JoinGroup/SyncGroup/Heartbeat/
// OffsetCommit/OffsetFetch). kafkajs only consumes through a consumer group: 600 messages
// produced with kafkajs, a kafkajs consumer subscribes fromBeginning and must receive all of
// them (per-partition offsets contiguous from 0); after it commits and leaves, a second
// consumer in the same group receives only the 100 messages produced afterwards.
const { SLOW, check, comment, kafkajs, runTests, sleep, test, withBroker } = require('./harness.js')

function client (b) {
  const { Kafka, logLevel } = kafkajs()
  return new Kafka({
    clientId: 'gregor-interop',
    brokers: [b.bootstrap],
    connectionTimeout: 10000 * SLOW,
    requestTimeout: 30000 * SLOW,
    logLevel: logLevel.NOTHING
  })
}

async function consumeN (kafka, groupId, topic, n, timeoutMs) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 })
  const got = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, offset: Number(message.offset), value: message.value.toString() })
      }
    })
    const deadline = Date.now() + timeoutMs
    while (got.length < n && Date.now() < deadline) await sleep(50)
    // Let a possible surplus arrive before judging.
    await sleep(500)
  } finally {
    await consumer.disconnect() // commits consumed offsets and leaves the group
  }
  return got
}

test('kafkajs_consumer_group_reads_all_then_resumes', async () => {
  await withBroker({ 'num.partitions': 3, 'group.initial.rebalance.delay.ms': 0 }, async b => {
    const kafka = client(b)
    const producer = kafka.producer()
    await producer.connect()
    const send = async (from, to) => {
      const messages = []
      for (let i = from; i < to; i++) messages.push({ key: `k${i % 11}`, value: `m${i}` })
      await producer.send({ topic: 'kjs-group', messages })
    }
    try {
      await send(0, 600)
      const first = await consumeN(kafka, 'g1', 'kjs-group', 600, 60000 * SLOW)
      comment(`first consumer got ${first.length}`)
      check(first.length === 600, `first consumer got ${first.length} messages, want 600`)
      const values = new Set(first.map(m => m.value))
      check(values.size === 600, 'duplicates in the first consumption')
      const next = new Map()
      for (const m of first.sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
        check(m.offset === (next.get(m.partition) || 0), `partition ${m.partition} offset ${m.offset}`)
        next.set(m.partition, m.offset + 1)
      }
      await send(600, 700)
      const second = await consumeN(kafka, 'g1', 'kjs-group', 100, 60000 * SLOW)
      const vals = second.map(m => m.value).sort()
      const want = []
      for (let i = 600; i < 700; i++) want.push(`m${i}`)
      check(JSON.stringify(vals) === JSON.stringify(want.sort()),
        `second consumer got ${second.length} messages (want exactly m600..m699)`)
    } finally {
      await producer.disconnect()
    }
  })
})

runTests()
