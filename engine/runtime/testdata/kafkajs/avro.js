// kafkajs with @kafkajs/confluent-schema-registry against the engine: register an Avro
// schema with the engine's registry, produce Avro readings to the engine's broker, then read
// the engine's Avro output back and print each value decoded, one JSON object per line.
//
//   node avro.js BROKER REGISTRY_URL IN_TOPIC OUT_TOPIC COUNT
const { Kafka, logLevel } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

const [broker, registryURL, inTopic, outTopic, count] = process.argv.slice(2)
const n = Number(count)
const kafka = new Kafka({ clientId: 'kafkajs-check', brokers: [broker], logLevel: logLevel.ERROR })
const registry = new SchemaRegistry({ host: registryURL })

const reading = {
  type: 'record', name: 'Reading', namespace: 'agent',
  fields: [
    { name: 'host', type: 'string' }, { name: 'metric', type: 'string' },
    { name: 'value', type: 'double' }, { name: 'ts', type: 'string' }, { name: 'env', type: 'string' },
  ],
}

async function produce () {
  const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(reading) }, { subject: `${inTopic}-value` })
  const messages = []
  for (let i = 0; i < n; i++) {
    const value = { host: `web-${i}`, metric: 'cpu_load', value: 90 + i, ts: `2026-12-07T09:00:0${i}Z`, env: 'prod' }
    messages.push({ value: await registry.encode(id, value) })
  }
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic: inTopic, messages })
  await producer.disconnect()
}

async function consume () {
  const consumer = kafka.consumer({ groupId: 'kafkajs-check' })
  await consumer.connect()
  await consumer.subscribe({ topic: outTopic, fromBeginning: true })
  let seen = 0
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen} of ${n} records of ${outTopic} in 60 s`)), 60000)
    consumer.run({
      eachMessage: async ({ message }) => {
        console.log(JSON.stringify(await registry.decode(message.value)))
        if (++seen === n) {
          clearTimeout(timer)
          resolve()
        }
      },
    })
  })
  await consumer.disconnect()
}

produce().then(consume).catch((err) => {
  console.error(err)
  process.exit(1)
})
