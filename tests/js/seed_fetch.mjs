// Seed 000's JavaScript sample (fetch), pointed at refreshd's broker. Prints the JSON answer.
// Run by crates/refreshd/tests/it/broker.rs.
const inputBody = JSON.stringify({ refresh_token: process.env.REFRESH_TOKEN });
const headers = {
  "Content-Type": "application/json",
  Accept: "application/json",
  Authorization: `Bearer ${process.env.API_KEY}`,
};

fetch(`${process.env.BROKER_URL}${process.argv[2]}`, { method: "POST", body: inputBody, headers })
  .then(function (res) {
    return res.json().then((body) => ({ status: res.status, body }));
  })
  .then(function (answer) {
    console.log(JSON.stringify(answer));
  });
