// kafkajs with @kafkajs/confluent-schema-registry as an agent would use them: register an
// Avro schema of raw agent readings with the engine's registry and produce one reading per
// VALUE to the engine's broker, in the Confluent wire format.
//
//   node agent.js BROKER REGISTRY_URL TOPIC TENANT HOST TS_EVENT VALUE...
const { Kafka, logLevel } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

const [broker, registryURL, topic, tenant, host, ts, ...values] = process.argv.slice(2)
const kafka = new Kafka({ clientId: 'kafkajs-agent', brokers: [broker], logLevel: logLevel.ERROR })
const registry = new SchemaRegistry({ host: registryURL })

const reading = {
  type: 'record', name: 'Reading', namespace: 'agent',
  fields: [
    { name: 'tenant_id', type: 'string' }, { name: 'host', type: 'string' },
    { name: 'metric', type: 'string' }, { name: 'value', type: 'double' },
    { name: 'ts_event', type: 'string' }, { name: 'unit', type: 'string' },
    { name: 'tags', type: { type: 'map', values: 'string' } },
  ],
}

async function main () {
  const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(reading) }, { subject: `${topic}-value` })
  const messages = []
  for (const v of values) {
    const value = { tenant_id: tenant, host, metric: 'cpu_load', value: Number(v), ts_event: ts, unit: 'percent', tags: { env: 'prod' } }
    messages.push({ value: await registry.encode(id, value) })
  }
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages })
  await producer.disconnect()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
