// kafkajs with @kafkajs/confluent-schema-registry, Protobuf: read the engine's Protobuf output
// with the registry and print each value, one JSON object per line.
//
//   node protobuf.js BROKER REGISTRY_URL OUT_TOPIC COUNT
//
// It only reads: this library writes Protobuf without the wire format's message indexes (its
// issue #152), which Confluent's own deserializers, and the engine, refuse.
const { Kafka, logLevel } = require('kafkajs')
const { SchemaRegistry } = require('@kafkajs/confluent-schema-registry')

const [broker, registryURL, outTopic, count] = process.argv.slice(2)
const n = Number(count)
const kafka = new Kafka({ clientId: 'kafkajs-proto-check', brokers: [broker], logLevel: logLevel.ERROR })
const registry = new SchemaRegistry({ host: registryURL })

async function consume () {
  const consumer = kafka.consumer({ groupId: 'kafkajs-proto-check' })
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

consume().catch((err) => {
  console.error(err)
  process.exit(1)
})
