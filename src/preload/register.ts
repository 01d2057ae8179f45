// `node --import handover/register app.js`: an --import module is awaited
// before the app's first line runs, so by then the parent's hello has been
// read and the app's listen() binds through handover synchronously, as
// Node's own listen() does.
import { Preload } from './preload.js'

await Preload.start().opened
