fn main() {
    eprintln!("autoencoders: the command line arrives with the study (issue 3)");
    std::process::exit(2);
}
