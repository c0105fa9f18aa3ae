'use strict'
// kafkajs (2.2.4) with a SCRAM user from the metadata log: the user is created with
// `gregor user add`, then a kafkajs producer on a SASL_PLAINTEXT listener (SCRAM-SHA-512)
// keeps producing across several session lifetimes (connections.max.reauth.ms): kafkajs
// implements KIP-368, so it re-authenticates in-band on the same connection, which the broker
// logs, and the broker never has to close an expired session.
const { spawnSync } = require('child_process')
const fs = require('fs')
const { Broker, GREGOR_BIN, HOST, SLOW, check, comment, freePort, kafkajs, recordingLogCreator, runTests, sleep, test } =
  require('./harness.js')

const REAUTH_MS = 3000

test('kafkajs_reauthenticates_a_metadata_log_scram_user', async () => {
  const b = new Broker({
    'sasl.enabled.mechanisms': 'SCRAM-SHA-512',
    'connections.max.reauth.ms': String(REAUTH_MS),
    'log.level': 'debug'
  }, 'kafkajs-scram')
  b.port = await freePort()
  const saslPort = await freePort()
  b.props.listeners = `PLAINTEXT://${HOST}:${b.port},SASL_PLAINTEXT://${HOST}:${saslPort}`
  b.props['listener.security.protocol.map'] = 'PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT'
  await b.start()
  try {
    const add = spawnSync(GREGOR_BIN, ['user', 'add', 'ivy', '--password', 'ivy-pw', '-b', b.bootstrap],
      { encoding: 'utf8', timeout: 30000 * SLOW })
    check(add.status === 0, `gregor user add: ${add.status} ${add.stderr}`)
    const { Kafka, logLevel } = kafkajs()
    const logs = []
    const kafka = new Kafka({
      clientId: 'gregor-interop',
      brokers: [`${HOST}:${saslPort}`],
      sasl: { mechanism: 'scram-sha-512', username: 'ivy', password: 'ivy-pw' },
      reauthenticationThreshold: 1500,
      connectionTimeout: 10000 * SLOW,
      requestTimeout: 30000 * SLOW,
      retry: { retries: 2 },
      logLevel: logLevel.WARN,
      logCreator: recordingLogCreator(logs)
    })
    const producer = kafka.producer({ allowAutoTopicCreation: true })
    await producer.connect()
    try {
      const t0 = Date.now()
      let sent = 0
      while (Date.now() - t0 < 2.5 * REAUTH_MS) {
        await producer.send({ topic: 'kafkajs-scram', messages: [{ value: `v${sent}` }] })
        sent++
        await sleep(250)
      }
      comment(`${sent} sends over ${Date.now() - t0} ms`)
    } finally {
      await producer.disconnect()
    }
    const errors = logs.filter(l => l.level === logLevel.ERROR)
    check(errors.length === 0, `kafkajs errors: ${JSON.stringify(errors)}`)
    const log = fs.readFileSync(b.logPath, 'utf8')
    const reauths = (log.match(/re-authenticated as User:ivy/g) || []).length
    check(reauths >= 2, `kafkajs re-authenticated ${reauths} times in 2.5 session lifetimes`)
    check(!log.includes('expired (connections.max.reauth.ms)'), 'the broker had to close an expired session')
  } finally {
    await b.stop()
    b.cleanup()
  }
})

runTests()
