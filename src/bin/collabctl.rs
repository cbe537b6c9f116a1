//! `collabctl`: the operators' client of the admin socket.

fn main() {
    println!("usage: collabctl <command>  (the admin socket client arrives with the admin API)");
}
