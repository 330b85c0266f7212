// The Socket.IO 4 side of `tandem-bench realtime-load`: the same scenario as
// Tandem's realtime server, written the way Socket.IO's docs recommend for
// more than one instance (the Redis adapter). Clients emit `join` (acked) and
// `broadcast` (room, payload); a broadcast goes to everyone else in the room
// as event `b`, like a Supabase broadcast with `self: false`.
//
//   PORT=0 REDIS_URL=redis://127.0.0.1:6379 node server.mjs
// prints "listening on http://127.0.0.1:<port>" once it accepts connections.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  maxHttpBufferSize: 64 * 1024,
  adapter: createAdapter(pub, sub, { key: process.env.SOCKETIO_KEY ?? "tandem-bench-sio" }),
});

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    if (typeof room !== "string" || room.length > 255) return;
    socket.join(room);
    if (typeof ack === "function") ack("ok");
  });
  socket.on("broadcast", (room, payload) => {
    if (typeof room !== "string" || !socket.rooms.has(room)) return;
    socket.to(room).emit("b", payload);
  });
});

http.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${http.address().port}`);
});

const stop = () => io.close(() => Promise.all([pub.quit(), sub.quit()]).finally(() => process.exit(0)));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
