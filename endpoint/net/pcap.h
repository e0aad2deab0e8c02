/* Classic pcap capture of Ethernet frames (Wireshark opens it). */
#ifndef PCIEFW_NET_PCAP_H
#define PCIEFW_NET_PCAP_H

#include <stddef.h>
#include <stdint.h>

struct pf_pcap;

struct pf_pcap *pf_pcap_create(const char *path, char *err, size_t errlen);
void pf_pcap_write(struct pf_pcap *p, const uint8_t *frame, size_t len);
void pf_pcap_close(struct pf_pcap *p);

#endif
