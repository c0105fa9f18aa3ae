'use strict'
// kafkajs transactional producer against Gregor, which has no transaction coordinator yet:
// producer.transaction() must fail fast instead of retrying COORDINATOR_NOT_AVAILABLE until its
// retry budget is spent. FindCoordinator answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which
// kafkajs does not retry; its broker pool then reports KafkaJSGroupCoordinatorNotFound (the
// Kafka error itself stays inside kafkajs). See test_transactions_unsupported.py for the raw
// protocol and librdkafka.
const { SLOW, check, comment, kafkajs, recordingLogCreator, runTests, test, withBroker } =
  require('./harness.js')

test('kafkajs_transaction_fails_fast', async () => {
  await withBroker({}, async b => {
    const { Kafka, logLevel } = kafkajs()
    const logs = []
    const kafka = new Kafka({
      clientId: 'gregor-interop',
      brokers: [b.bootstrap],
      connectionTimeout: 10000 * SLOW,
      requestTimeout: 30000 * SLOW,
      logLevel: logLevel.NOTHING,
      logCreator: recordingLogCreator(logs)
    })
    const producer = kafka.producer({
      transactionalId: 'tx-js', idempotent: true, maxInFlightRequests: 1
    })
    await producer.connect()
    const t0 = Date.now()
    let err = null
    try {
      const txn = await producer.transaction()
      await txn.abort()
    } catch (e) {
      err = e
    }
    const took = (Date.now() - t0) / 1000
    await producer.disconnect()
    check(err !== null, 'transaction() succeeded')
    comment(`transaction() failed after ${took.toFixed(2)} s: ${err.name}: ${err.message}`)
    check(took < 2 * SLOW, `transaction() took ${took.toFixed(1)} s`)
    check(err.name === 'KafkaJSGroupCoordinatorNotFound' && err.retriable === false,
      `error ${err.name} retriable=${err.retriable}`)
  })
})

runTests()
