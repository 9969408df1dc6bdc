// A webhook receiver as refreshd's users would write one: every POST is verified with the
// `standardwebhooks` package (Webhook(secret).verify(body, headers)); verified events are kept,
// anything else is refused with 400. Driven by crates/refreshd/tests/it/webhooks.rs:
//   PORT, WEBHOOK_SECRET    where to listen, the shared secret (whsec_…)
//   STATUS                  what verified deliveries are answered at first (default 204)
//   GET  /events            {verified: [{id, timestamp, signature, body, event}], rejected, answered}
//   POST /mode {"status"}   answer verified deliveries with this status from now on;
//                           a non-2xx one is not kept, as a failing receiver's would not be
import http from "node:http";
import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.WEBHOOK_SECRET);
const verified = [];
let rejected = 0;
let answered = 0;
let status = Number(process.env.STATUS || 204);

function read(request) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        request.on("data", (chunk) => chunks.push(chunk));
        request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
        request.on("error", reject);
    });
}

const server = http.createServer(async (request, response) => {
    const body = await read(request);
    if (request.method === "GET" && request.url === "/events") {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ verified, rejected, answered }));
        return;
    }
    if (request.method === "POST" && request.url === "/mode") {
        status = JSON.parse(body).status;
        response.writeHead(204).end();
        return;
    }
    if (request.method !== "POST" || request.url !== "/hook") {
        response.writeHead(404).end();
        return;
    }
    let event;
    try {
        event = webhook.verify(body, request.headers);
    } catch (e) {
        rejected += 1;
        response.writeHead(400, { "content-type": "text/plain" });
        response.end(`rejected: ${e.message}`);
        return;
    }
    answered += 1;
    if (status >= 200 && status < 300) {
        verified.push({
            id: request.headers["webhook-id"],
            timestamp: request.headers["webhook-timestamp"],
            signature: request.headers["webhook-signature"],
            body,
            event,
        });
    }
    response.writeHead(status).end();
});

server.listen(Number(process.env.PORT), "127.0.0.1", () => {
    console.log("webhook_receiver: listening");
});
