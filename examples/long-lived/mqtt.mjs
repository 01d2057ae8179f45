// mqtt.mjs: an aedes MQTT broker on a plain net server, unmodified
// (PORT=1883 by default). At a hand-off, handover ends each client
// connection at its own moment in the leave window; clients reconnect and
// resubscribe. A client that subscribes to "pid" is told which process it
// reached.
//   node --import handover/register mqtt.mjs
import net from 'node:net'
import { Aedes } from 'aedes'

const aedes = await Aedes.createBroker()
aedes.on('subscribe', (subscriptions, client) => {
  if (subscriptions.some((s) => s.topic === 'pid')) client.publish({ topic: 'pid', payload: String(process.pid), qos: 0, retain: false }, () => {})
})
const server = net.createServer(aedes.handle)
server.listen(Number(process.env.PORT) || 1883, () => console.log(`listening ${process.pid}`))
