'use strict'
// kafkajs transactional producer against Gregor's transaction coordinator: a committed
// transaction's messages reach a read_committed kafkajs consumer (readUncommitted: false), an
// aborted one's never do, and a read_uncommitted consumer sees both. See
// test_transactions.py for librdkafka and the protocol details.
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

async function consume (kafka, groupId, topic, readUncommitted, n, timeoutMs) {
  const consumer = kafka.consumer({ groupId, readUncommitted, sessionTimeout: 10000, heartbeatInterval: 1000 })
  const got = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => { got.push(message.value.toString()) } })
    const deadline = Date.now() + timeoutMs
    while (got.length < n && Date.now() < deadline) await sleep(50)
    await sleep(1000 * SLOW) // a surplus would show up now
  } finally {
    await consumer.disconnect()
  }
  return got
}

test('kafkajs_transaction_commit_and_abort', async () => {
  await withBroker({ 'num.partitions': 1, 'group.initial.rebalance.delay.ms': 0 }, async b => {
    const kafka = client(b)
    const producer = kafka.producer({ transactionalId: 'tx-js', idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      let txn = await producer.transaction()
      await txn.send({ topic: 'kjs-txn', messages: [{ value: 'c0' }, { value: 'c1' }] })
      await txn.commit()
      txn = await producer.transaction()
      await txn.send({ topic: 'kjs-txn', messages: [{ value: 'a0' }] })
      await txn.abort()
      txn = await producer.transaction()
      await txn.send({ topic: 'kjs-txn', messages: [{ value: 'c2' }] })
      await txn.commit()
    } finally {
      await producer.disconnect()
    }
    const committed = await consume(kafka, 'g-rc', 'kjs-txn', false, 3, 20000 * SLOW)
    comment(`read_committed: ${committed.join(',')}`)
    check(committed.join(',') === 'c0,c1,c2', `read_committed got ${committed.join(',')}`)
    const all = await consume(kafka, 'g-ru', 'kjs-txn', true, 4, 20000 * SLOW)
    check(all.join(',') === 'c0,c1,a0,c2', `read_uncommitted got ${all.join(',')}`)
  })
})

runTests()
