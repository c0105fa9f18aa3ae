'use strict'
// kafkajs (2.2.4) against Gregor: admin client connect (ApiVersions + SASL-less handshake),
// describeCluster(), fetchTopicMetadata() and listTopics() on a fresh broker. kafkajs log
// entries at ERROR level fail the test (they mean a protocol problem the client retried).
const { HOST, SLOW, check, comment, kafkajs, recordingLogCreator, runTests, test, withBroker } =
  require('./harness.js')

const NODE_ID = 7

function client (b, logs) {
  const { Kafka, logLevel } = kafkajs()
  return new Kafka({
    clientId: 'gregor-interop',
    brokers: [b.bootstrap],
    connectionTimeout: 10000 * SLOW,
    requestTimeout: 30000 * SLOW,
    retry: { retries: 2 },
    logLevel: logLevel.WARN,
    logCreator: recordingLogCreator(logs)
  })
}

function errorsIn (logs) {
  const { logLevel } = kafkajs()
  return logs.filter(l => l.level === logLevel.ERROR)
}

test('kafkajs_admin_describe_cluster', async () => {
  // describeCluster(): brokers [{nodeId 7, host 127.0.0.1, port}], controller 7, a cluster id.
  await withBroker({ 'node.id': NODE_ID }, async b => {
    const logs = []
    const admin = client(b, logs).admin()
    await admin.connect()
    try {
      const d = await admin.describeCluster()
      comment(`describeCluster: ${JSON.stringify(d)}`)
      check(JSON.stringify(d.brokers) === JSON.stringify([{ nodeId: NODE_ID, host: HOST, port: b.port }]),
        `brokers ${JSON.stringify(d.brokers)}`)
      check(d.controller === NODE_ID, `controller ${d.controller}`)
      check(typeof d.clusterId === 'string' && d.clusterId.length > 0, `clusterId ${d.clusterId}`)
      check(errorsIn(logs).length === 0, `kafkajs errors: ${JSON.stringify(errorsIn(logs))}`)
    } finally {
      await admin.disconnect()
    }
  })
})

test('kafkajs_admin_topic_metadata_fresh_broker', async () => {
  // fetchTopicMetadata() with no topics and listTopics() work and are empty on a fresh broker.
  await withBroker({ 'node.id': NODE_ID }, async b => {
    const logs = []
    const admin = client(b, logs).admin()
    await admin.connect()
    try {
      const md = await admin.fetchTopicMetadata()
      check(Array.isArray(md.topics) && md.topics.length === 0, `topics ${JSON.stringify(md)}`)
      const names = await admin.listTopics()
      check(Array.isArray(names) && names.length === 0, `listTopics ${JSON.stringify(names)}`)
      check(errorsIn(logs).length === 0, `kafkajs errors: ${JSON.stringify(errorsIn(logs))}`)
    } finally {
      await admin.disconnect()
    }
  })
})

runTests()
