#!/usr/bin/perl
# Verify the DKIM signatures of the message on standard input with Perl's
# Mail::DKIM (Debian libmail-dkim-perl): a verifier that is not dkimpy.
# The public keys are asked of the DNS server at $DKIM_DNS_SERVER, port
# $DKIM_DNS_PORT (the tests' unbound, tests/dns_support.py), never the system's.
# Prints one line per signature, "<result> d=<domain> a=<algorithm> (<detail>)",
# then "result: <overall>".
use strict;
use warnings;
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;
use Net::DNS::Resolver;

my $resolver = Net::DNS::Resolver->new(
    nameservers => [ $ENV{DKIM_DNS_SERVER} ],
    port        => $ENV{DKIM_DNS_PORT},
    recurse     => 1,
    udp_timeout => 5,
    tcp_timeout => 5,
    retry       => 2,
);
Mail::DKIM::DNS::resolver($resolver);

my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (my $line = <STDIN>) {
    $line =~ s/\r?\n\z/\r\n/;
    $dkim->PRINT($line);
}
$dkim->CLOSE;
foreach my $signature ($dkim->signatures) {
    printf "%s d=%s a=%s (%s)\n", $signature->result, $signature->domain // "",
        $signature->algorithm // "", $signature->result_detail // "";
}
print "result: ", $dkim->result, "\n";
